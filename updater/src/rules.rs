//! The updater's decisions as pure functions over a verified answer and the local state, so each
//! is tested without a server: what a check means (update, up to date, held, not entitled, no
//! fit), the version rule, and the age of a kept answer.

use vypusk_protocol::Version;
use vypusk_protocol::wire::Module;

/// A release from a verified answer whose version and file names are safe to use.
#[derive(Debug, Clone)]
pub struct Offer {
    pub version: Version,
    pub module: Module,
}

impl Offer {
    /// The server found it compatible with the configuration asked for (`untested` marks the
    /// ones shown only because the client asks `SHOW_UNTESTED=Y`).
    pub fn fits(&self) -> bool {
        !self.module.untested
    }

    /// What this client may install: downloadable, and fitting unless `--show-untested`.
    pub fn usable(&self, show_untested: bool) -> bool {
        self.module.downloadable && (self.fits() || show_untested)
    }

    /// What counts as "seen" for the version rule: only what this client could install
    /// without asking for more (downloadable for its license, fitting its configuration), so a
    /// release it may not have can never make the releases it may have look like downgrades.
    pub fn installable(&self) -> bool {
        self.module.downloadable && self.fits()
    }
}

/// What a check found, newest-first `offers` against the installed version and the hold.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// The newest release this client may install (within the hold).
    Available(&'a Offer),
    /// Nothing newer at all.
    UpToDate,
    /// Something newer may be installed, but `hold` keeps `install` where it is.
    Held {
        hold: &'a Version,
        newest: &'a Offer,
    },
    /// Newer releases fit, but the license may not download them; the newest of them.
    NotEntitled(&'a Offer),
    /// Newer releases exist, but none fits this configuration; the newest of them.
    Incompatible(&'a Offer),
}

pub fn verdict<'a>(
    offers: &'a [Offer],
    installed: Option<&Version>,
    hold: Option<&'a Version>,
    show_untested: bool,
) -> Verdict<'a> {
    let newer = || {
        offers
            .iter()
            .filter(move |o| installed.is_none_or(|i| &o.version > i))
    };
    let within_hold = |o: &&Offer| hold.is_none_or(|h| &o.version <= h);
    if let Some(o) = newer()
        .filter(|o| o.usable(show_untested))
        .find(within_hold)
    {
        return Verdict::Available(o);
    }
    if let (Some(hold), Some(newest)) = (hold, newer().find(|o| o.usable(show_untested))) {
        return Verdict::Held { hold, newest };
    }
    if let Some(o) = newer().find(|o| o.fits() || show_untested) {
        return Verdict::NotEntitled(o);
    }
    match newer().next() {
        Some(o) => Verdict::Incompatible(o),
        None => Verdict::UpToDate,
    }
}

/// The highest version this answer lets the client install, if any.
pub fn highest_installable(offers: &[Offer]) -> Option<&Version> {
    offers
        .iter()
        .filter(|o| o.installable())
        .map(|o| &o.version)
        .max()
}

/// The version rule: `v` must be newer than the installed version and not older than the
/// highest version seen installable (this answer included, so a first run and its re-run decide
/// alike), unless `--allow-downgrade`. A hold lowers that floor to itself: holding at a version
/// is asking not to go above it.
pub fn version_rule(
    v: &Version,
    installed: Option<&Version>,
    highest_seen: Option<&Version>,
    hold: Option<&Version>,
    allow_downgrade: bool,
) -> Result<(), String> {
    if allow_downgrade {
        return Ok(());
    }
    if let Some(i) = installed
        && v <= i
    {
        return Err(format!(
            "refusing release {v}: it is not newer than the installed {i} (--allow-downgrade \
             allows it)"
        ));
    }
    let floor = match (highest_seen, hold) {
        (Some(h), Some(hold)) => Some(h.min(hold)),
        (h, _) => h,
    };
    if let Some(h) = floor
        && v < h
    {
        return Err(format!(
            "refusing release {v}: it is older than {h}, the highest version seen installable \
             before (--allow-downgrade allows it)"
        ));
    }
    Ok(())
}

/// `30d`, `12h`, `90m`, `45s`, or a bare number of days, in seconds.
pub fn parse_age(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => t.split_at(at),
        None => (t, "d"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("--max-age {text:?}: expected a number with d, h, m or s"))?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(format!("--max-age {text:?}: the unit must be d, h, m or s")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("--max-age {text:?} is too large"))
}

/// Seconds since the epoch of an RFC 3339 time as servers write it: `2026-11-30T10:53:07Z`,
/// optionally with fractional seconds and a `+hh:mm` offset.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest.get(1..)?;
            if o.len() != 5 || o.as_bytes()[2] != b':' {
                return None;
            }
            let oh: i64 = o.get(0..2)?.parse().ok()?;
            let om: i64 = o.get(3..5)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(v: &str, downloadable: bool, untested: bool) -> Offer {
        Offer {
            version: Version::parse_1c(v).unwrap(),
            module: Module {
                uniqid: v.into(),
                downloadable,
                untested,
                result: if downloadable {
                    String::new()
                } else {
                    "subscription ended on 2026-10-01".into()
                },
                ..Default::default()
            },
        }
    }
    fn v(s: &str) -> Version {
        Version::parse_1c(s).unwrap()
    }
    fn version_of(verdict: &Verdict<'_>) -> (&'static str, String) {
        match verdict {
            Verdict::Available(o) => ("available", o.version.to_string()),
            Verdict::UpToDate => ("up to date", String::new()),
            Verdict::Held { newest, .. } => ("held", newest.version.to_string()),
            Verdict::NotEntitled(o) => ("not entitled", o.version.to_string()),
            Verdict::Incompatible(o) => ("incompatible", o.version.to_string()),
        }
    }

    #[test]
    fn lapsed_subscription_is_not_up_to_date() {
        let offers = [offer("2.1.0.6", false, false)];
        assert_eq!(
            version_of(&verdict(&offers, None, None, false)),
            ("not entitled", "2.1.0.6".into())
        );
        // The last release it is entitled to is still an update.
        let offers = [
            offer("2.1.0.6", false, false),
            offer("2.1.0.5", true, false),
        ];
        assert_eq!(
            version_of(&verdict(&offers, Some(&v("2.1.0.4")), None, false)),
            ("available", "2.1.0.5".into())
        );
    }

    #[test]
    fn releases_that_do_not_fit_are_named() {
        let offers = [offer("2.2.0.1", true, true)];
        assert_eq!(
            version_of(&verdict(&offers, None, None, false)),
            ("incompatible", "2.2.0.1".into())
        );
        assert_eq!(
            version_of(&verdict(&offers, None, None, true)),
            ("available", "2.2.0.1".into())
        );
        // Not newer than the installed one: nothing to say.
        assert_eq!(
            version_of(&verdict(&offers, Some(&v("2.2.0.1")), None, false)),
            ("up to date", String::new())
        );
    }

    #[test]
    fn a_hold_caps_what_is_available() {
        let offers = [offer("3", true, false), offer("2.5", true, false)];
        let hold = v("2.5");
        assert_eq!(
            version_of(&verdict(&offers, Some(&v("2")), Some(&hold), false)),
            ("available", "2.5".into())
        );
        assert_eq!(
            version_of(&verdict(&offers, Some(&v("2.5")), Some(&hold), false)),
            ("held", "3".into())
        );
    }

    #[test]
    fn only_installable_versions_raise_the_floor() {
        let offers = [
            offer("2.1.0.7", true, true),
            offer("2.1.0.6", false, false),
            offer("2.1.0.5", true, false),
        ];
        assert_eq!(highest_installable(&offers), Some(&v("2.1.0.5")));
    }

    #[test]
    fn version_rule_is_the_same_on_every_run() {
        let seen = v("2.1.0.6");
        assert!(version_rule(&v("2.1.0.5"), None, Some(&seen), None, false).is_err());
        assert!(version_rule(&v("2.1.0.5"), None, Some(&seen), None, true).is_ok());
        assert!(version_rule(&v("2.1.0.6"), None, Some(&seen), None, false).is_ok());
        assert!(version_rule(&v("2.1.0.6"), Some(&seen), None, None, false).is_err());
        // Held at 2.1.0.5: installing up to the hold is what was asked for.
        let hold = v("2.1.0.5");
        assert!(version_rule(&v("2.1.0.5"), None, Some(&seen), Some(&hold), false).is_ok());
        assert!(version_rule(&v("2.1.0.4"), None, Some(&seen), Some(&hold), false).is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(30 * 86_400));
        assert_eq!(parse_age("30"), Ok(30 * 86_400));
        assert_eq!(parse_age("12h"), Ok(12 * 3600));
        assert_eq!(parse_age("90m"), Ok(5400));
        assert_eq!(parse_age("5s"), Ok(5));
        assert!(parse_age("").is_err());
        assert!(parse_age("3w").is_err());
        assert!(parse_age("-1d").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-30T10:53:07Z"), Some(1_796_035_987));
        assert_eq!(
            parse_rfc3339("2026-11-30T13:53:07.123+03:00"),
            Some(1_796_035_987)
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-13-30T10:53:07Z",
            "2026-11-30T10:53:07",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
