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
///
/// `conf_folded` is `None` for a request without `CONF` (a non-1C product, SPEC §4.1): only
/// `*` entries count then. `conf_version` is `None` when the request has none (allowed only
/// without `CONF`): the bounds are not checked then. `vypusk_protocol::compat::fits` is the
/// same rule on the wire form for clients; the test `agrees_with_the_client_side_rule` keeps
/// the two together.
pub fn match_compatibility<'a>(
    entries: &'a [CompatEntry],
    conf_folded: Option<&str>,
    conf_version: Option<&Version>,
) -> CompatMatch<'a> {
    let in_range = |e: &&CompatEntry| conf_version.is_none_or(|v| e.in_range(v));
    let named = || {
        entries
            .iter()
            .filter(move |e| conf_folded.is_some_and(|c| &*e.conf_folded == c))
    };
    let wildcard = || entries.iter().filter(|e| e.is_wildcard());
    let any_named = named().next().is_some();
    let matched = named().find(in_range).or_else(|| {
        if any_named {
            None
        } else {
            wildcard().find(in_range)
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
            Some(fold("комплекснаяавтоматизация_crm").as_str()),
            Some(&v("2.5.8.191")),
        );
        assert!(m.compatible);
        assert_eq!(m.min_1c_version, "2.5.8.191");
        let m = match_compatibility(
            &entries,
            Some(fold("КОМПЛЕКСНАЯАВТОМАТИЗАЦИЯ_CRM").as_str()),
            Some(&v("2.5.9")),
        );
        assert!(m.compatible);
    }

    #[test]
    fn version_bounds_are_inclusive_and_numeric() {
        let entries = [entry("УТ", "11.4.11.55", Some("11.5.20"))];
        let conf = fold("УТ");
        assert!(
            !match_compatibility(&entries, Some(conf.as_str()), Some(&v("11.4.11.9"))).compatible
        );
        assert!(
            match_compatibility(&entries, Some(conf.as_str()), Some(&v("11.4.11.55"))).compatible
        );
        assert!(
            match_compatibility(&entries, Some(conf.as_str()), Some(&v("11.5.20.0"))).compatible
        );
        assert!(
            !match_compatibility(&entries, Some(conf.as_str()), Some(&v("11.5.20.1"))).compatible
        );
        let low = match_compatibility(&entries, Some(conf.as_str()), Some(&v("11.4.11.9")));
        assert_eq!(low.min_1c_version, "11.4.11.55");
    }

    #[test]
    fn wildcard_matches_any_conf_unless_named() {
        let entries = [entry("*", "1.0", None), entry("ERP", "2.5", None)];
        assert!(
            match_compatibility(&entries, Some(fold("УТ").as_str()), Some(&v("1.0"))).compatible
        );
        // ERP has its own, stricter entry.
        let erp = match_compatibility(&entries, Some(fold("erp").as_str()), Some(&v("2.4")));
        assert!(!erp.compatible);
        assert_eq!(erp.min_1c_version, "2.5");
        assert!(
            match_compatibility(&entries, Some(fold("erp").as_str()), Some(&v("2.5"))).compatible
        );
    }

    #[test]
    fn unknown_conf_reports_lowest_bound() {
        let entries = [entry("ERP", "2.5", None), entry("УТ", "11.4", None)];
        let m = match_compatibility(&entries, Some(fold("БП").as_str()), Some(&v("3.0")));
        assert!(!m.compatible);
        assert_eq!(m.min_1c_version, "2.5");
        let m = match_compatibility(&[], Some(fold("БП").as_str()), Some(&v("3.0")));
        assert!(!m.compatible);
        assert_eq!(m.min_1c_version, "");
    }

    #[test]
    fn without_a_configuration_only_wildcards_count() {
        let entries = [entry("УТ", "1.0", None), entry("*", "2.0", Some("3.0"))];
        // No CONF_VERSION: the bounds of `*` are not checked.
        let m = match_compatibility(&entries, None, None);
        assert!(m.compatible);
        assert_eq!(m.min_1c_version, "2.0");
        // With one, they are.
        assert!(match_compatibility(&entries, None, Some(&v("2.5"))).compatible);
        let out = match_compatibility(&entries, None, Some(&v("3.1")));
        assert!(!out.compatible);
        assert_eq!(out.min_1c_version, "2.0");
        // Named entries never match a request without CONF.
        let named_only = [entry("УТ", "1.0", None)];
        let m = match_compatibility(&named_only, None, None);
        assert!(!m.compatible);
        assert_eq!(m.min_1c_version, "1.0");
        assert!(!match_compatibility(&[], None, None).compatible);
    }

    /// The server's rule and the client-side mirror (`vypusk_protocol::compat::fits`) give
    /// the same verdict for every list, configuration and version.
    #[test]
    fn agrees_with_the_client_side_rule() {
        use proptest::prelude::*;
        use vypusk_protocol::wire::Compatibility;

        let conf = prop::sample::select(vec!["*", "УТ", "ут", "ERP", "БП"]);
        let version = prop::sample::select(vec!["0", "1", "1.5", "2", "2.0.0.1", "3", "11.5"]);
        let one_entry = (
            conf.clone(),
            version.clone(),
            prop::option::of(version.clone()),
        );
        let config = (
            prop::collection::vec(one_entry, 0..5),
            prop::option::of(prop::sample::select(vec!["", "УТ", "Ут", "ERP", "КА", "*"])),
            prop::option::of(version),
        );
        proptest!(|((list, asked, asked_version) in config)| {
            let entries: Vec<CompatEntry> = list
                .iter()
                .map(|(c, min, max)| entry(c, min, *max))
                .collect();
            let wire: Vec<Compatibility> = list
                .iter()
                .map(|(c, min, max)| Compatibility {
                    conf: (*c).to_owned(),
                    min_1c_version: (*min).to_owned(),
                    max_1c_version: max.map(str::to_owned),
                })
                .collect();
            let asked_version = asked_version.map(v);
            // The server reads an empty CONF as none at all.
            let folded = asked.filter(|c| !c.is_empty()).map(fold);
            let ours = match_compatibility(&entries, folded.as_deref(), asked_version.as_ref());
            let theirs =
                vypusk_protocol::compat::fits(&wire, asked, asked_version.as_ref());
            prop_assert_eq!(ours.compatible, theirs, "{:?} {:?} {:?}", list, asked, asked_version);
        });
    }
}
