//! Compatibility of a release with a host configuration (SPEC §4.1 rule 3).

use std::sync::Arc;

use vypusk_protocol::Version;

/// One `{conf, min_1c_version, max_1c_version?}` entry, parsed. Configuration names repeat
/// across thousands of releases, so the catalog shares them (`Arc<str>`).
#[derive(Debug, Clone)]
pub struct CompatEntry {
    pub conf: Arc<str>,
    /// `conf` in Unicode lowercase, compared with the lowercased `CONF`.
    pub conf_folded: Arc<str>,
    pub min: Version,
    /// `min` as the answer's `min_1c_version` says it, rendered once.
    pub min_text: Box<str>,
    pub max: Option<Version>,
}

impl CompatEntry {
    pub fn new(conf: &str, min: Version, max: Option<Version>) -> Self {
        CompatEntry::shared(conf.into(), fold(conf).into(), min, max)
    }

    /// An entry whose names are shared with other entries (see the catalog's loader).
    pub fn shared(
        conf: Arc<str>,
        conf_folded: Arc<str>,
        min: Version,
        max: Option<Version>,
    ) -> Self {
        CompatEntry {
            conf,
            conf_folded,
            min_text: min.to_string().into(),
            min,
            max,
        }
    }

    fn is_wildcard(&self) -> bool {
        &*self.conf == "*"
    }

    fn in_range(&self, conf_version: &Version) -> bool {
        self.min <= *conf_version && self.max.as_ref().is_none_or(|max| conf_version <= max)
    }
}

/// Case folding for configuration names: `УправлениеТорговлей` = `управлениеторговлей`.
pub fn fold(conf: &str) -> String {
    conf.to_lowercase()
}

/// The outcome of matching one release against `CONF` + `CONF_VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatMatch<'a> {
    pub compatible: bool,
    /// What the answer's `min_1c_version` says: the bound of the entry that matched `CONF`,
    /// else the lowest bound of the list, else `""`.
    pub min_1c_version: &'a str,
}

/// An entry naming the configuration itself wins over `*` both for the verdict and for the
/// reported bound, so a vendor can give one configuration a stricter minimum. Runs for every
/// release a check looks at, so it allocates nothing.
pub fn match_compatibility<'a>(
    entries: &'a [CompatEntry],
    conf_folded: &str,
    conf_version: &Version,
) -> CompatMatch<'a> {
    let named = || entries.iter().filter(|e| &*e.conf_folded == conf_folded);
    let wildcard = || entries.iter().filter(|e| e.is_wildcard());
    let any_named = named().next().is_some();
    let matched = named().find(|e| e.in_range(conf_version)).or_else(|| {
        if any_named {
            None
        } else {
            wildcard().find(|e| e.in_range(conf_version))
        }
    });
    if let Some(entry) = matched {
        return CompatMatch {
            compatible: true,
            min_1c_version: &entry.min_text,
        };
    }
    let reported = named()
        .next()
        .or_else(|| wildcard().next())
        .or_else(|| entries.iter().min_by(|a, b| a.min.cmp(&b.min)))
        .map_or("", |e| &e.min_text);
    CompatMatch {
        compatible: false,
        min_1c_version: reported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse_1c(s).unwrap()
    }
    fn entry(conf: &str, min: &str, max: Option<&str>) -> CompatEntry {
        CompatEntry::new(conf, v(min), max.map(v))
    }

    #[test]
    fn cyrillic_case_insensitive() {
        let entries = [entry("КомплекснаяАвтоматизация_CRM", "2.5.8.191", None)];
        let m = match_compatibility(
            &entries,
            &fold("комплекснаяавтоматизация_crm"),
            &v("2.5.8.191"),
        );
        assert!(m.compatible);
        assert_eq!(m.min_1c_version, "2.5.8.191");
        let m = match_compatibility(&entries, &fold("КОМПЛЕКСНАЯАВТОМАТИЗАЦИЯ_CRM"), &v("2.5.9"));
        assert!(m.compatible);
    }

    #[test]
    fn version_bounds_are_inclusive_and_numeric() {
        let entries = [entry("УТ", "11.4.11.55", Some("11.5.20"))];
        let conf = fold("УТ");
        assert!(!match_compatibility(&entries, &conf, &v("11.4.11.9")).compatible);
        assert!(match_compatibility(&entries, &conf, &v("11.4.11.55")).compatible);
        assert!(match_compatibility(&entries, &conf, &v("11.5.20.0")).compatible);
        assert!(!match_compatibility(&entries, &conf, &v("11.5.20.1")).compatible);
        let low = match_compatibility(&entries, &conf, &v("11.4.11.9"));
        assert_eq!(low.min_1c_version, "11.4.11.55");
    }

    #[test]
    fn wildcard_matches_any_conf_unless_named() {
        let entries = [entry("*", "1.0", None), entry("ERP", "2.5", None)];
        assert!(match_compatibility(&entries, &fold("УТ"), &v("1.0")).compatible);
        // ERP has its own, stricter entry.
        let erp = match_compatibility(&entries, &fold("erp"), &v("2.4"));
        assert!(!erp.compatible);
        assert_eq!(erp.min_1c_version, "2.5");
        assert!(match_compatibility(&entries, &fold("erp"), &v("2.5")).compatible);
    }

    #[test]
    fn unknown_conf_reports_lowest_bound() {
        let entries = [entry("ERP", "2.5", None), entry("УТ", "11.4", None)];
        let m = match_compatibility(&entries, &fold("БП"), &v("3.0"));
        assert!(!m.compatible);
        assert_eq!(m.min_1c_version, "2.5");
        let m = match_compatibility(&[], &fold("БП"), &v("3.0"));
        assert!(!m.compatible);
        assert_eq!(m.min_1c_version, "");
    }
}
