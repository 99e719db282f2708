//! Which releases a check answers with (SPEC §4.1 rules 2–5), given the catalog and a
//! parsed request.

use vypusk_protocol::Version;

use crate::catalog::{Distribution, Release};
use crate::domain::licensing::{Standing, downloadable};
use crate::domain::matching::{fold, match_compatibility};

/// A parsed check request plus what the server knows about the caller.
pub struct CheckContext<'a> {
    pub installed: Option<&'a Version>,
    /// `None` for a request without `CONF` (a non-1C product): only `*` entries match.
    pub conf: Option<&'a str>,
    /// `None` only without `CONF`: the bounds of `*` entries are not checked then.
    pub conf_version: Option<&'a Version>,
    pub show_untested: bool,
    pub sees_prereleases: bool,
    pub standing: &'a Standing,
}

/// One release to put in the answer, borrowed from the catalog snapshot.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    pub release: &'a Release,
    pub untested: bool,
    pub min_1c_version: &'a str,
    /// `Err(reason)` when listed but not downloadable.
    pub access: Result<(), String>,
}

/// Newest first.
pub fn offers<'a>(dist: &'a Distribution, ctx: &CheckContext<'_>) -> Vec<Offer<'a>> {
    let conf = ctx.conf.map(fold);
    dist.releases
        .iter()
        // Newest first: everything after the first release not newer than the installed one
        // is older still.
        .take_while(|r| ctx.installed.is_none_or(|installed| r.version > *installed))
        .filter(|r| !r.prerelease || ctx.sees_prereleases)
        .filter_map(|r| {
            let compat = match_compatibility(&r.compatibility, conf.as_deref(), ctx.conf_version);
            if !compat.compatible && !ctx.show_untested {
                return None;
            }
            let access = downloadable(ctx.standing, r.published_at);
            if access.is_err() && dist.hide_unlicensed {
                return None;
            }
            Some(Offer {
                release: r,
                untested: !compat.compatible,
                min_1c_version: compat.min_1c_version,
                access,
            })
        })
        .collect()
}

/// The first offer that fits the configuration (not one shown only because of
/// `SHOW_UNTESTED=Y`): what the statistics record as the check's offered version.
pub fn first_compatible<'o, 'a>(offers: &'o [Offer<'a>]) -> Option<&'o Offer<'a>> {
    offers.iter().find(|o| !o.untested)
}

/// `getLatestRelease`: the newest offer; with `downloadable_only` the newest downloadable one.
pub fn latest(mut offers: Vec<Offer<'_>>, downloadable_only: bool) -> Option<Offer<'_>> {
    if downloadable_only {
        offers.retain(|o| o.access.is_ok());
    }
    offers.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::File;
    use crate::domain::matching::CompatEntry;
    use chrono::{TimeZone, Utc};
    use vypusk_protocol::VersionScheme;

    fn v(s: &str) -> Version {
        Version::parse_1c(s).unwrap()
    }

    fn release(
        id: i32,
        version: &str,
        day: u32,
        prerelease: bool,
        conf: &str,
        min: &str,
    ) -> Release {
        Release {
            id,
            version: v(version),
            published_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
            prerelease,
            compatibility: vec![CompatEntry::new(conf, v(min), None)].into(),
            compatibility_json: "[]".into(),
            extension_hash: None,
            files: vec![File {
                id,
                size: 1,
                md5: [0; 16],
                sha256: [0; 32],
                json: Default::default(),
            }]
            .into(),
            json: Default::default(),
        }
    }

    fn dist(releases: Vec<Release>, hide_unlicensed: bool) -> Distribution {
        let mut releases = releases;
        releases.sort_by(|a, b| b.version.cmp(&a.version));
        Distribution {
            id: 1,
            build: 1,
            code: "PT".into(),
            name: "".into(),
            description: "".into(),
            developer: "".into(),
            label: "".into(),
            promo_link: "".into(),
            gate: Some((85, 43)),
            published: true,
            hide_unlicensed,
            scheme: VersionScheme::OneC,
            releases: releases.into(),
            json: Default::default(),
        }
    }

    fn ctx<'a>(
        installed: Option<&'a Version>,
        cv: &'a Version,
        standing: &'a Standing,
    ) -> CheckContext<'a> {
        CheckContext {
            installed,
            conf: Some("УТ"),
            conf_version: Some(cv),
            show_untested: false,
            sees_prereleases: false,
            standing,
        }
    }

    #[test]
    fn newer_compatible_newest_first() {
        let d = dist(
            vec![
                release(1, "4.0.4.9", 1, false, "ут", "11.0"),
                release(2, "4.0.4.10", 2, false, "УТ", "11.0"),
                release(3, "4.0.4.11", 3, false, "УТ", "11.0"),
                release(4, "4.0.4.12", 4, false, "ERP", "2.0"),
            ],
            false,
        );
        let installed = v("4.0.4.9");
        let cv = v("11.5");
        let s = Standing::Licensed { until: None };
        let got: Vec<String> = offers(&d, &ctx(Some(&installed), &cv, &s))
            .iter()
            .map(|o| o.release.version.to_string())
            .collect();
        assert_eq!(got, ["4.0.4.11", "4.0.4.10"]);

        let mut c = ctx(Some(&installed), &cv, &s);
        c.show_untested = true;
        let got = offers(&d, &c);
        assert_eq!(got.len(), 3);
        assert!(got[0].untested && got[0].release.version == v("4.0.4.12"));
        assert!(!got[1].untested);
    }

    #[test]
    fn prereleases_only_when_allowed() {
        let d = dist(vec![release(1, "5.0", 1, true, "УТ", "1.0")], false);
        let cv = v("11.5");
        let s = Standing::Free;
        assert!(offers(&d, &ctx(None, &cv, &s)).is_empty());
        let mut c = ctx(None, &cv, &s);
        c.sees_prereleases = true;
        assert_eq!(offers(&d, &c).len(), 1);
    }

    #[test]
    fn unlicensed_listed_or_hidden() {
        let cv = v("11.5");
        let denied = Standing::Denied("no".into());
        let d = dist(vec![release(1, "5.0", 1, false, "УТ", "1.0")], false);
        let got = offers(&d, &ctx(None, &cv, &denied));
        assert_eq!(got[0].access, Err("no".to_owned()));
        let hidden = dist(vec![release(1, "5.0", 1, false, "УТ", "1.0")], true);
        assert!(offers(&hidden, &ctx(None, &cv, &denied)).is_empty());
    }

    #[test]
    fn latest_prefers_downloadable_only_on_request() {
        let cv = v("11.5");
        let until = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let s = Standing::Licensed { until: Some(until) };
        let d = dist(
            vec![
                release(1, "1.0", 1, false, "УТ", "1.0"),
                release(2, "2.0", 5, false, "УТ", "1.0"),
            ],
            false,
        );
        let all = offers(&d, &ctx(None, &cv, &s));
        assert_eq!(latest(all.clone(), false).unwrap().release.id, 2);
        assert_eq!(latest(all, true).unwrap().release.id, 1);
    }
}
