//! The compatibility rule of SPEC §4.1 rule 3 on the wire form of a release's list, for clients:
//! `vypusk-update` uses it to explain why no release fits and to check an offline bundle against
//! its own configuration. The server applies the same rule to its catalog
//! (`server/src/domain/matching.rs`); the cases of the tests below are the server's.

use crate::Version;
use crate::wire::Compatibility;

/// Whether a release with compatibility list `entries` fits `conf` at `conf_version`.
///
/// - An entry naming the configuration (compared in Unicode lowercase) wins over `*`: when the
///   list names the configuration, only those entries count.
/// - Without a configuration (a non-1C product, no `CONF`) only `*` entries count.
/// - Without a configuration version the bounds are not checked (nothing to compare with).
/// - An entry whose bounds do not parse as 1C versions never fits.
pub fn fits(entries: &[Compatibility], conf: Option<&str>, conf_version: Option<&Version>) -> bool {
    let in_range = |e: &Compatibility| {
        let Some(v) = conf_version else {
            return true;
        };
        let Ok(min) = Version::parse_1c(&e.min_1c_version) else {
            return false;
        };
        let max_ok = match e.max_1c_version.as_deref().filter(|m| !m.is_empty()) {
            None => true,
            Some(max) => Version::parse_1c(max).is_ok_and(|max| v <= &max),
        };
        &min <= v && max_ok
    };
    let wildcard = || entries.iter().filter(|e| e.conf == "*");
    let Some(conf) = conf.filter(|c| !c.is_empty()) else {
        return wildcard().any(in_range);
    };
    let folded = conf.to_lowercase();
    let mut named = entries
        .iter()
        .filter(|e| e.conf != "*" && e.conf.to_lowercase() == folded)
        .peekable();
    if named.peek().is_some() {
        named.any(in_range)
    } else {
        wildcard().any(in_range)
    }
}

/// The list in one line for a message: `UT 11.5.20.1 or later, * 2.0 to 3.0`.
pub fn describe(entries: &[Compatibility]) -> String {
    if entries.is_empty() {
        return "no configuration (its compatibility list is empty)".to_owned();
    }
    entries
        .iter()
        .map(|e| {
            let conf = if e.conf == "*" {
                "any configuration"
            } else {
                &e.conf
            };
            match e.max_1c_version.as_deref().filter(|m| !m.is_empty()) {
                Some(max) => format!("{conf} {} to {max}", e.min_1c_version),
                None => format!("{conf} {} or later", e.min_1c_version),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(conf: &str, min: &str, max: Option<&str>) -> Compatibility {
        Compatibility {
            conf: conf.into(),
            min_1c_version: min.into(),
            max_1c_version: max.map(Into::into),
        }
    }
    fn v(s: &str) -> Version {
        Version::parse_1c(s).unwrap()
    }

    #[test]
    fn named_entry_case_insensitive_and_in_range() {
        let list = [entry(
            "КомплекснаяАвтоматизация_CRM",
            "2.5.8.191",
            Some("2.5.9"),
        )];
        assert!(fits(
            &list,
            Some("комплекснаяавтоматизация_crm"),
            Some(&v("2.5.8.191"))
        ));
        assert!(fits(
            &list,
            Some("КОМПЛЕКСНАЯАВТОМАТИЗАЦИЯ_CRM"),
            Some(&v("2.5.9"))
        ));
        assert!(!fits(
            &list,
            Some("КомплекснаяАвтоматизация_CRM"),
            Some(&v("2.5.9.1"))
        ));
        assert!(!fits(
            &list,
            Some("КомплекснаяАвтоматизация_CRM"),
            Some(&v("2.5.8.190"))
        ));
        assert!(!fits(&list, Some("UT"), Some(&v("2.5.8.191"))));
    }

    #[test]
    fn named_entry_wins_over_the_wildcard() {
        let list = [entry("*", "1", None), entry("UT", "11.5.20", None)];
        assert!(!fits(&list, Some("ut"), Some(&v("11.5.18"))));
        assert!(fits(&list, Some("ut"), Some(&v("11.5.20"))));
        assert!(fits(&list, Some("BP"), Some(&v("3.0"))));
    }

    #[test]
    fn without_a_configuration_only_wildcards_count() {
        let list = [entry("UT", "1", None)];
        assert!(!fits(&list, None, None));
        let list = [entry("UT", "1", None), entry("*", "0", None)];
        assert!(fits(&list, None, None));
        assert!(fits(&list, Some(""), None));
        assert!(!fits(&[], None, None));
    }

    #[test]
    fn describes_the_list() {
        let list = [entry("UT", "11.5.20", None), entry("*", "2.0", Some("3.0"))];
        assert_eq!(
            describe(&list),
            "UT 11.5.20 or later, any configuration 2.0 to 3.0"
        );
    }
}
