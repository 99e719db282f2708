//! Licensing (SPEC §4.1 rule 4): may this license key see and download this release?

use chrono::{DateTime, Utc};

/// A license as the check path sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseView {
    /// The license's database id: what download links carry instead of the key (issue 9).
    pub id: i32,
    /// A number unique to this load of the license in this process (see `crate::answer`).
    pub build: u64,
    pub key: Box<str>,
    pub revoked: bool,
    pub beta: bool,
    pub features: Vec<FeatureGrant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureGrant {
    pub product: i64,
    pub feature: i64,
    /// `None` never lapses.
    pub active_until: Option<DateTime<Utc>>,
}

/// Where a client stands with a distribution, before looking at single releases.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// The distribution is free.
    Free,
    /// The key holds the feature; releases published up to `until` (if any) are downloadable.
    Licensed { until: Option<DateTime<Utc>> },
    /// Listed but never downloadable, for the reason given.
    Denied(String),
}

/// `gate` is the distribution's `(lic_product_id, lic_feature_id)`; `None` = free.
/// `license` is the looked-up key: `None` when the key is unknown.
pub fn standing(gate: Option<(i64, i64)>, license: Option<&LicenseView>) -> Standing {
    let Some((product, feature)) = gate else {
        return Standing::Free;
    };
    let Some(license) = license else {
        return Standing::Denied("The license key is not known to this server.".to_owned());
    };
    if license.revoked {
        return Standing::Denied("The license key has been revoked.".to_owned());
    }
    // Several grants of one feature: the most generous one counts.
    let mut best: Option<Option<DateTime<Utc>>> = None;
    for grant in license
        .features
        .iter()
        .filter(|g| g.product == product && g.feature == feature)
    {
        best = Some(match (best, grant.active_until) {
            (None, until) => until,
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
        });
    }
    match best {
        Some(until) => Standing::Licensed { until },
        None => Standing::Denied(format!(
            "The license does not include product {product} feature {feature}."
        )),
    }
}

/// `Ok` when the release may be downloaded, else the one-sentence reason.
pub fn downloadable(standing: &Standing, published_at: DateTime<Utc>) -> Result<(), String> {
    match standing {
        Standing::Free | Standing::Licensed { until: None } => Ok(()),
        Standing::Licensed { until: Some(until) } if published_at <= *until => Ok(()),
        Standing::Licensed { until: Some(until) } => Err(format!(
            "The update subscription ended on {}; this release was published after that.",
            until.format("%Y-%m-%d")
        )),
        Standing::Denied(reason) => Err(reason.clone()),
    }
}

/// Prereleases are shown to beta licenses that are in good standing, and to configured networks.
pub fn sees_prereleases(license: Option<&LicenseView>, from_prerelease_network: bool) -> bool {
    from_prerelease_network || license.is_some_and(|l| l.beta && !l.revoked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn license(features: Vec<FeatureGrant>) -> LicenseView {
        LicenseView {
            id: 1,
            build: 1,
            key: "MIKO-1".into(),
            revoked: false,
            beta: false,
            features,
        }
    }

    fn grant(until: Option<DateTime<Utc>>) -> FeatureGrant {
        FeatureGrant {
            product: 85,
            feature: 43,
            active_until: until,
        }
    }

    #[test]
    fn free_distribution_needs_nothing() {
        assert_eq!(standing(None, None), Standing::Free);
        assert!(downloadable(&Standing::Free, at(2030, 1, 1)).is_ok());
    }

    #[test]
    fn every_denial_has_its_reason() {
        let gate = Some((85, 43));
        let Standing::Denied(unknown) = standing(gate, None) else {
            panic!()
        };
        assert!(unknown.contains("not known"));
        let mut revoked = license(vec![grant(None)]);
        revoked.revoked = true;
        let Standing::Denied(r) = standing(gate, Some(&revoked)) else {
            panic!()
        };
        assert!(r.contains("revoked"));
        let other = license(vec![FeatureGrant {
            product: 85,
            feature: 44,
            active_until: None,
        }]);
        let Standing::Denied(r) = standing(gate, Some(&other)) else {
            panic!()
        };
        assert!(r.contains("product 85 feature 43"));
    }

    #[test]
    fn lapsed_subscription_keeps_earlier_releases() {
        let s = standing(
            Some((85, 43)),
            Some(&license(vec![grant(Some(at(2026, 6, 1)))])),
        );
        assert!(downloadable(&s, at(2026, 5, 31)).is_ok());
        assert!(downloadable(&s, at(2026, 6, 1)).is_ok());
        let why = downloadable(&s, at(2026, 6, 2)).unwrap_err();
        assert!(why.contains("ended on 2026-06-01"), "{why}");
    }

    #[test]
    fn most_generous_grant_wins() {
        let s = standing(
            Some((85, 43)),
            Some(&license(vec![grant(Some(at(2025, 1, 1))), grant(None)])),
        );
        assert_eq!(s, Standing::Licensed { until: None });
    }

    #[test]
    fn prerelease_visibility() {
        let mut l = license(vec![]);
        assert!(!sees_prereleases(Some(&l), false));
        assert!(sees_prereleases(Some(&l), true));
        l.beta = true;
        assert!(sees_prereleases(Some(&l), false));
        l.revoked = true;
        assert!(!sees_prereleases(Some(&l), false));
        assert!(!sees_prereleases(None, false));
    }
}
