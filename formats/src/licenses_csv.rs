//! License CSV import (`POST /api/v1/licenses/import`, `vypusk license import`): parsing and
//! validation as plain functions. Nothing here touches the database.
//!
//! Format: text (the server decodes the bytes first: UTF-8, or Windows-1251 as Excel writes
//! it; `vypusk_server::licenses_csv::decode`), a header line naming the columns (any order;
//! `key`, `product` and `feature` are required, `customer`, `itn`, `beta`, `revoked` and
//! `active_until` optional), then one line per license feature. The same key on several lines
//! accumulates features; its `customer`, `itn`, `beta` and `revoked` may be repeated or left
//! empty on the later lines but must not contradict. Empty `product` and `feature` = a license
//! line without a feature. `beta`/`revoked`: `Y`/`N`, `yes`/`no`, `true`/`false`, `1`/`0`,
//! empty = no. `active_until`: RFC 3339, or a date `YYYY-MM-DD` or `DD.MM.YYYY` (Excel in
//! Russian locales) meaning through the end of that day (UTC); empty = never lapses.
//! Comma-separated; a header with `;` and no `,` switches to `;` (Excel in Russian locales).
//! Every bad line is reported as `line N: why`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::identifiers::LicenseKey;

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureData {
    pub product: i64,
    pub feature: i64,
    /// `None` never lapses.
    pub active_until: Option<DateTime<Utc>>,
}

/// A license as the API and the import write it.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseData {
    pub key: String,
    pub customer: String,
    pub itn: String,
    pub beta: bool,
    pub revoked: bool,
    pub features: Vec<FeatureData>,
}

pub const COLUMNS: [&str; 8] = [
    "key",
    "customer",
    "itn",
    "beta",
    "revoked",
    "product",
    "feature",
    "active_until",
];

/// At most this many bad lines are named in the error; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 200;

/// `active_until` of a CSV line: what [`parse_active_until`] takes, or a date `DD.MM.YYYY` (the
/// short date of Excel in Russian locales: `31.12.2030`, also `1.2.2030`), through the end of
/// that day (23:59:59 UTC). The JSON API keeps the ISO forms only.
pub fn parse_csv_active_until(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = parse_active_until(text) {
        return Ok(at);
    }
    let dotted = text.split('.').collect::<Vec<_>>();
    if let [d, m, y] = dotted[..]
        && [d, m, y]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && d.len() <= 2
        && m.len() <= 2
        && y.len() == 4
    {
        let date = y
            .parse()
            .ok()
            .zip(m.parse().ok())
            .zip(d.parse().ok())
            .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
            .ok_or_else(|| format!("active_until {text:?}: no such date"))?;
        return end_of_day(date, text);
    }
    Err(format!(
        "active_until {text:?} is none of: a date DD.MM.YYYY, a date YYYY-MM-DD, an RFC 3339 time"
    ))
}

fn end_of_day(date: NaiveDate, text: &str) -> Result<DateTime<Utc>, String> {
    let end = date
        .and_hms_opt(23, 59, 59)
        .ok_or_else(|| format!("invalid date {text:?}"))?;
    Ok(end.and_utc())
}

/// RFC 3339, or a date `YYYY-MM-DD` meaning through the end of that day (23:59:59 UTC).
pub fn parse_active_until(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return end_of_day(date, text);
    }
    Err(format!(
        "active_until {text:?} is neither a date YYYY-MM-DD nor an RFC 3339 time"
    ))
}

pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" | "1" => Ok(true),
        "n" | "no" | "false" | "0" | "" => Ok(false),
        other => Err(format!(
            "{other:?} is not a yes/no value (Y, N, true, false, 1, 0)"
        )),
    }
}

/// Checks one license's fields (shared with the JSON API): key syntax, lengths, and no
/// feature listed twice.
pub fn validate(license: &LicenseData) -> Result<(), String> {
    LicenseKey::parse(&license.key)?;
    if license.customer.chars().count() > 255 {
        return Err("customer is longer than 255 characters".into());
    }
    if license.itn.chars().count() > 64 {
        return Err("itn is longer than 64 characters".into());
    }
    for (i, f) in license.features.iter().enumerate() {
        if license.features[..i]
            .iter()
            .any(|g| g.product == f.product && g.feature == f.feature)
        {
            return Err(format!(
                "feature product {} feature {} is listed twice",
                f.product, f.feature
            ));
        }
    }
    Ok(())
}

/// Parses the whole file; either every license, or every bad line.
pub fn parse(text: &str) -> Result<Vec<LicenseData>, Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.contains(';') && !first_line.contains(',') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        None => {
            return Err(vec![format!(
                "line 1: empty file; expected the header {}",
                COLUMNS.join(",")
            )]);
        }
        Some(Err(e)) => return Err(vec![format!("line 1: {e}")]),
        Some(Ok(h)) => h,
    };
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) => {
                if index.insert(c, i).is_some() {
                    errors.push(format!("line 1: column {c:?} appears twice"));
                }
            }
            None => errors.push(format!(
                "line 1: unknown column {name:?}; expected {}",
                COLUMNS.join(",")
            )),
        }
    }
    for required in ["key", "product", "feature"] {
        if !index.contains_key(required) {
            errors.push(format!("line 1: the header lacks the column {required:?}"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let width = header.len();

    struct Pending {
        data: LicenseData,
        customer: Option<String>,
        itn: Option<String>,
        beta: Option<bool>,
        revoked: Option<bool>,
        first_line: u64,
    }
    let mut order: Vec<String> = Vec::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();

    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue; // blank line
        }
        if record.len() != width {
            errors.push(format!(
                "line {line}: {} fields, but the header has {width}",
                record.len()
            ));
            continue;
        }
        match parse_line(&record, &index) {
            Err(why) => errors.push(format!("line {line}: {why}")),
            Ok(parsed) => {
                let entry = pending.entry(parsed.key.clone()).or_insert_with(|| {
                    order.push(parsed.key.clone());
                    Pending {
                        data: LicenseData {
                            key: parsed.key.clone(),
                            customer: String::new(),
                            itn: String::new(),
                            beta: false,
                            revoked: false,
                            features: Vec::new(),
                        },
                        customer: None,
                        itn: None,
                        beta: None,
                        revoked: None,
                        first_line: line,
                    }
                });
                let first = entry.first_line;
                let mut clash = None;
                merge(&mut entry.customer, parsed.customer, "customer", &mut clash);
                merge(&mut entry.itn, parsed.itn, "itn", &mut clash);
                merge(&mut entry.beta, parsed.beta, "beta", &mut clash);
                merge(&mut entry.revoked, parsed.revoked, "revoked", &mut clash);
                if let Some(field) = clash {
                    errors.push(format!(
                        "line {line}: {field} differs from an earlier line (line {first}) of the same key"
                    ));
                    continue;
                }
                if let Some(f) = parsed.feature {
                    if entry
                        .data
                        .features
                        .iter()
                        .any(|g| g.product == f.product && g.feature == f.feature)
                    {
                        errors.push(format!(
                            "line {line}: product {} feature {} is already listed for this key",
                            f.product, f.feature
                        ));
                        continue;
                    }
                    entry.data.features.push(f);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(order
        .into_iter()
        .filter_map(|k| pending.remove(&k))
        .map(|p| {
            let mut data = p.data;
            data.customer = p.customer.unwrap_or_default();
            data.itn = p.itn.unwrap_or_default();
            data.beta = p.beta.unwrap_or(false);
            data.revoked = p.revoked.unwrap_or(false);
            data
        })
        .collect())
}

/// The errors as one message: every bad line, up to `MAX_REPORTED_ERRORS`.
pub fn error_message(errors: &[String]) -> String {
    let mut message = format!(
        "the CSV has {} bad line{}; nothing was imported:",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors.iter().take(MAX_REPORTED_ERRORS) {
        message.push('\n');
        message.push_str(e);
    }
    if errors.len() > MAX_REPORTED_ERRORS {
        message.push_str(&format!(
            "\n… and {} more",
            errors.len() - MAX_REPORTED_ERRORS
        ));
    }
    message
}

struct Line {
    key: String,
    customer: Option<String>,
    itn: Option<String>,
    beta: Option<bool>,
    revoked: Option<bool>,
    feature: Option<FeatureData>,
}

fn field<'r>(record: &'r csv::StringRecord, index: &HashMap<&str, usize>, name: &str) -> &'r str {
    index.get(name).and_then(|&i| record.get(i)).unwrap_or("")
}

fn parse_line(record: &csv::StringRecord, index: &HashMap<&str, usize>) -> Result<Line, String> {
    let cell = |name: &str| field(record, index, name);
    let key = LicenseKey::parse(cell("key"))?.as_str().to_owned();
    let text = |name: &str, max: usize| -> Result<Option<String>, String> {
        let v = cell(name);
        if v.chars().count() > max {
            return Err(format!("{name} is longer than {max} characters"));
        }
        Ok((!v.is_empty()).then(|| v.to_owned()))
    };
    let flag = |name: &str| -> Result<Option<bool>, String> {
        let v = cell(name);
        if v.is_empty() {
            return Ok(None);
        }
        parse_bool(v).map(Some).map_err(|e| format!("{name}: {e}"))
    };
    let id = |name: &str| -> Result<i64, String> {
        cell(name)
            .parse::<i64>()
            .map_err(|_| format!("{name} {:?} is not an integer", cell(name)))
    };
    let feature = match (cell("product").is_empty(), cell("feature").is_empty()) {
        (true, true) => {
            if !cell("active_until").is_empty() {
                return Err("active_until without product and feature".into());
            }
            None
        }
        (false, false) => Some(FeatureData {
            product: id("product")?,
            feature: id("feature")?,
            active_until: match cell("active_until") {
                "" => None,
                v => Some(parse_csv_active_until(v)?),
            },
        }),
        _ => return Err("product and feature must be both set or both empty".into()),
    };
    Ok(Line {
        key,
        customer: text("customer", 255)?,
        itn: text("itn", 64)?,
        beta: flag("beta")?,
        revoked: flag("revoked")?,
        feature,
    })
}

/// Takes `new` when nothing was seen yet; a different value is a clash.
fn merge<T: PartialEq>(
    seen: &mut Option<T>,
    new: Option<T>,
    field: &'static str,
    clash: &mut Option<&'static str>,
) {
    if let Some(new) = new {
        match seen {
            Some(old) if *old != new => {
                clash.get_or_insert(field);
            }
            Some(_) => {}
            None => *seen = Some(new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "key,customer,itn,beta,revoked,product,feature,active_until\n";

    #[test]
    fn accumulates_features_per_key() {
        let csv = format!(
            "{HEADER}MIKO-AAAA-1,ООО \"Ромашка\",7701234567,Y,,10,1,2030-12-31\n\
             MIKO-AAAA-1,,,,,10,2,\n\
             MIKO-BBBB-2,ИП Иванов,,N,N,,,\n"
        );
        let licenses = parse(&csv).unwrap();
        assert_eq!(licenses.len(), 2);
        let a = &licenses[0];
        assert_eq!(a.key, "MIKO-AAAA-1");
        assert_eq!(a.customer, "ООО \"Ромашка\"");
        assert_eq!(a.itn, "7701234567");
        assert!(a.beta && !a.revoked);
        assert_eq!(a.features.len(), 2);
        assert_eq!(
            a.features[0].active_until.unwrap().to_rfc3339(),
            "2030-12-31T23:59:59+00:00"
        );
        assert_eq!(a.features[1].active_until, None);
        let b = &licenses[1];
        assert_eq!(b.customer, "ИП Иванов");
        assert!(b.features.is_empty());
    }

    #[test]
    fn reports_every_bad_line_by_number() {
        let csv = format!(
            "{HEADER}MIKO-OK-1,A,,,,1,1,\n\
             bad key,A,,,,1,1,\n\
             MIKO-OK-2,A,,maybe,,1,1,\n\
             MIKO-OK-3,A,,,,1,,\n\
             MIKO-OK-4,A,,,,x,1,\n\
             MIKO-OK-5,A,,,,1,1,31.13.2030\n\
             MIKO-OK-1,B,,,,1,2,\n\
             MIKO-OK-1,,,,,1,1,\n\
             MIKO-OK-6,A,,,\n"
        );
        let errors = parse(&csv).unwrap_err();
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 9", "line 10"
            ],
            "{errors:#?}"
        );
        assert!(errors[0].contains("malformed license key"), "{}", errors[0]);
        assert!(errors[5].contains("customer differs"), "{}", errors[5]);
        assert!(errors[6].contains("already listed"), "{}", errors[6]);
        assert!(errors[7].contains("fields"), "{}", errors[7]);
        let message = error_message(&errors);
        assert!(message.starts_with("the CSV has 8 bad lines"));
        assert!(message.contains("\nline 7: "));
    }

    #[test]
    fn header_rules() {
        assert!(parse("").unwrap_err()[0].starts_with("line 1: empty file"));
        let e = parse("key,product,colour\n").unwrap_err();
        assert!(
            e.iter().any(|e| e.contains("unknown column \"colour\"")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.contains("lacks the column \"feature\"")),
            "{e:?}"
        );
        // Minimal header, any order, BOM, semicolons, CRLF, quoted newline keeps numbering.
        let csv = "\u{feff}Feature;Product;Key;Customer\r\n1;2;ABCD-1;\"two\nlines\"\r\n\r\n1;3;ABCD-1;\r\n";
        let l = parse(csv).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].customer, "two\nlines");
        assert_eq!((l[0].features[0].product, l[0].features[0].feature), (2, 1));
        assert_eq!(l[0].features.len(), 2);
        let e = parse("key,product,feature\nABCD-1,1,1\n\"ab\ncd\",1,1\nbad!,1,1\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("line 3:"), "{e:?}");
        assert!(e[1].starts_with("line 5:"), "{e:?}");
    }

    #[test]
    fn only_header_is_no_licenses() {
        assert_eq!(parse(HEADER).unwrap(), vec![]);
    }

    #[test]
    fn active_until_forms() {
        assert_eq!(
            parse_active_until("2025-01-31").unwrap().to_rfc3339(),
            "2025-01-31T23:59:59+00:00"
        );
        assert_eq!(
            parse_active_until("2025-01-31T10:00:00+03:00")
                .unwrap()
                .to_rfc3339(),
            "2025-01-31T07:00:00+00:00"
        );
        assert!(parse_active_until("2025-02-30").is_err());
        assert!(parse_active_until("tomorrow").is_err());
        // The JSON API keeps the ISO forms; the CSV also takes Excel's DD.MM.YYYY.
        assert!(parse_active_until("31.01.2025").is_err());
        for (text, want) in [
            ("31.01.2025", "2025-01-31T23:59:59+00:00"),
            (" 1.2.2025 ", "2025-02-01T23:59:59+00:00"),
            ("2025-01-31", "2025-01-31T23:59:59+00:00"),
            ("2025-01-31T10:00:00+03:00", "2025-01-31T07:00:00+00:00"),
        ] {
            assert_eq!(
                parse_csv_active_until(text).unwrap().to_rfc3339(),
                want,
                "{text}"
            );
        }
        for bad in [
            "30.02.2025",
            "31.12.25",
            "12/31/2025",
            "1.2.3.2025",
            "+1.2.2025",
            "",
        ] {
            let e = parse_csv_active_until(bad).unwrap_err();
            assert!(e.contains("active_until"), "{bad}: {e}");
        }
        let csv = format!("{HEADER}ABCD-1,,,,,1,1,31.12.2030\n");
        assert_eq!(
            parse(&csv).unwrap()[0].features[0]
                .active_until
                .unwrap()
                .to_rfc3339(),
            "2030-12-31T23:59:59+00:00"
        );
    }

    #[test]
    fn flags_and_validation() {
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool(""), Ok(false));
        assert!(parse_bool("2").is_err());
        let mut l = LicenseData {
            key: "ABCD-1".into(),
            customer: String::new(),
            itn: String::new(),
            beta: false,
            revoked: false,
            features: vec![
                FeatureData {
                    product: 1,
                    feature: 1,
                    active_until: None,
                },
                FeatureData {
                    product: 1,
                    feature: 2,
                    active_until: None,
                },
            ],
        };
        assert!(validate(&l).is_ok());
        l.features.push(FeatureData {
            product: 1,
            feature: 1,
            active_until: None,
        });
        assert!(validate(&l).unwrap_err().contains("twice"));
        l.key = "x".into();
        assert!(validate(&l).is_err());
    }
}
