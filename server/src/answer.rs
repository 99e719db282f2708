//! `getAvailableReleases` / `getLatestRelease` answers written straight into one buffer (issue
//! 9): everything that does not depend on the request is rendered once per catalog build
//! (`render_*`, called by the loader; the compatibility list and the version scheme of issue 10
//! included), and an answer adds only the download links, `min_1c_version`, the per-request
//! flags and `server_time` (formatted once per second). The bytes are exactly what serde_json
//! makes of `vypusk_protocol::wire::ReleasesResponse` (SPEC §4.1), which the tests below prove.
//!
//! Signatures of answers without a `Licence-QueryID` are cached under what the answer depends
//! on ([`AnswerKey`]), so a repeated check costs no RSA and no hashing of the body.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use vypusk_formats::token::{DownloadGrant, TokenKey};
use vypusk_protocol::VersionScheme;
use vypusk_protocol::wire::Compatibility;

use crate::catalog::{Distribution, DistributionJson, FileJson, Parts, Release, ReleaseJson};
use crate::domain::matching::CompatEntry;
use crate::domain::selection::Offer;

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// A time as the client protocol writes it: RFC 3339, UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `t` (Unix seconds) as [`rfc3339`] writes it, JSON-quoted: formatted once per second on each
/// thread, so an answer's `server_time` costs a copy.
pub fn push_server_time(out: &mut Vec<u8>, t: i64) {
    thread_local! {
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    LAST.with_borrow_mut(|(at, text)| {
        if *at != t || text.is_empty() {
            *text = DateTime::from_timestamp(t, 0).map_or_else(String::new, rfc3339);
            *at = t;
        }
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    });
}

/// A release's compatibility list in its wire form, as `getModuleInfo` and the modules of
/// check answers render it.
pub fn wire_compatibility(entries: &[CompatEntry]) -> Vec<Compatibility> {
    entries
        .iter()
        .map(|c| Compatibility {
            conf: c.conf.to_string(),
            min_1c_version: c.min.to_string(),
            max_1c_version: c.max.as_ref().map(|v| v.to_string()),
        })
        .collect()
}

/// The module's `"compatibility"` value: the whole list as JSON (rendered once per distinct
/// list at catalog load, see the loader).
pub fn render_compatibility(entries: &[CompatEntry]) -> Arc<str> {
    serde_json::to_string(&wire_compatibility(entries))
        .expect("a compatibility list serializes")
        .into()
}

#[allow(clippy::too_many_arguments)]
pub fn render_distribution(
    code: &str,
    name: &str,
    description: &str,
    developer: &str,
    label: &str,
    promo_link: &str,
    gate: Option<(i64, i64)>,
    scheme: VersionScheme,
) -> DistributionJson {
    let (product, feature) = gate.unwrap_or((0, 0));
    DistributionJson {
        before_min: format!(
            "\"version\":{},\"developer\":{},\"min_1c_version\":",
            json_str(label),
            json_str(developer)
        )
        .into(),
        before_changelog: format!(
            ",\"lic_product_id\":{product},\"lic_feature_id\":{feature},\"name\":{},\"description\":{},\"promo_link\":{},\"changelog\":",
            json_str(name),
            json_str(description),
            json_str(promo_link)
        )
        .into(),
        end: format!(
            ",\"distribution\":{},\"version_scheme\":{},\"compatibility\":",
            json_str(code),
            json_str(scheme.as_str())
        )
        .into(),
    }
}

pub fn render_release(
    id: i32,
    version: &str,
    published_at: DateTime<Utc>,
    prerelease: bool,
    changelog: &str,
    main_file_size: u64,
) -> ReleaseJson {
    ReleaseJson(Parts::new([
        &format!("{{\"release_id\":{id},\"uniqid\":{},", json_str(version)),
        &json_str(changelog),
        &format!(",\"size\":{main_file_size},\"download_link\":"),
        &format!(
            "],\"published_at\":{},\"prerelease\":{prerelease},\"untested\":",
            json_str(&rfc3339(published_at))
        ),
    ]))
}

pub fn render_file(name: &str, size: u64, md5: &[u8; 16], sha256: &[u8; 32]) -> FileJson {
    FileJson(Parts::new([
        name,
        &format!("{{\"name\":{},\"size\":{size},\"url\":", json_str(name)),
        &format!(
            ",\"md5\":\"{}\",\"sha256\":\"{}\"}}",
            hex::encode(md5),
            hex::encode(sha256)
        ),
        &percent_encoding::utf8_percent_encode(name, PATH_SEGMENT).to_string(),
    ]))
}

/// Everything but unreserved characters is escaped in a path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What the download links of one answer are made of.
pub struct Links<'a> {
    /// `public_url`, JSON-escaped without quotes.
    pub base: &'a str,
    pub key: &'a TokenKey,
    pub expires: i64,
    pub license: Option<i32>,
    pub count: bool,
    pub conf: &'a str,
    pub conf_version: &'a str,
    pub installed_version: &'a str,
}

impl Links<'_> {
    fn token(&self, dist: &Distribution, release: &Release) -> String {
        // The statistics fields travel only when the download is counted.
        let stat = |s: &str| {
            if self.count {
                s.to_owned()
            } else {
                String::new()
            }
        };
        let grant = DownloadGrant {
            distribution: dist.id,
            release: release.id,
            license: self.license,
            count: self.count,
            expires: self.expires,
            conf: stat(self.conf),
            conf_version: stat(self.conf_version),
            installed_version: stat(self.installed_version),
        };
        self.key.encode(&grant)
    }

    fn push_url(&self, out: &mut Vec<u8>, token: &str, file: &FileJson) {
        out.push(b'"');
        out.extend_from_slice(self.base.as_bytes());
        out.extend_from_slice(b"/releases/v1/files/");
        out.extend_from_slice(token.as_bytes());
        out.push(b'/');
        out.extend_from_slice(file.url_name().as_bytes());
        out.push(b'"');
    }
}

/// The answer `{"modules":[…],"result":…,"server_time":…}` for `offers` of `dist`, made at
/// `now` (Unix seconds).
pub fn write_answer(
    dist: &Distribution,
    offers: &[Offer<'_>],
    links: &Links<'_>,
    now: i64,
) -> Vec<u8> {
    let estimate: usize = offers
        .iter()
        .map(|o| {
            256 + o.release.json.changelog().len()
                + o.release.compatibility_json.len()
                + o.release
                    .files
                    .iter()
                    .map(|f| f.json.head().len() + f.json.tail().len() + 256)
                    .sum::<usize>()
        })
        .sum();
    let mut out = Vec::with_capacity(64 + estimate);
    out.extend_from_slice(b"{\"modules\":[");
    for (i, offer) in offers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_module(&mut out, dist, offer, links);
    }
    out.extend_from_slice(b"],\"result\":");
    let result = offers
        .iter()
        .find_map(|o| o.access.as_ref().err())
        .map_or("", |r| r.as_str());
    push_json_str(&mut out, result);
    out.extend_from_slice(b",\"server_time\":");
    push_server_time(&mut out, now);
    out.push(b'}');
    out
}

fn write_module(out: &mut Vec<u8>, dist: &Distribution, offer: &Offer<'_>, links: &Links<'_>) {
    let release = offer.release;
    let downloadable = offer.access.is_ok();
    let token = downloadable.then(|| links.token(dist, release));
    out.extend_from_slice(release.json.head().as_bytes());
    out.extend_from_slice(dist.json.before_min.as_bytes());
    push_json_str(out, offer.min_1c_version);
    out.extend_from_slice(dist.json.before_changelog.as_bytes());
    out.extend_from_slice(release.json.changelog().as_bytes());
    out.extend_from_slice(release.json.size().as_bytes());
    match (&token, release.main_file()) {
        (Some(token), Some(main)) => links.push_url(out, token, &main.json),
        _ => out.extend_from_slice(b"\"\""),
    }
    out.extend_from_slice(b",\"files\":[");
    for (i, file) in release.files.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(file.json.head().as_bytes());
        match &token {
            Some(token) => links.push_url(out, token, &file.json),
            None => out.extend_from_slice(b"\"\""),
        }
        out.extend_from_slice(file.json.tail().as_bytes());
    }
    out.extend_from_slice(release.json.after_files().as_bytes());
    let _ = write!(
        out,
        "{},\"downloadable\":{downloadable},\"result\":",
        offer.untested
    );
    push_json_str(out, offer.access.as_ref().err().map_or("", |r| r.as_str()));
    out.extend_from_slice(dist.json.end.as_bytes());
    out.extend_from_slice(release.compatibility_json.as_bytes());
    out.push(b'}');
}

/// What a `getAvailableReleases` / `getLatestRelease` answer depends on, besides the process's
/// constants (public URL, token secret): equal keys give byte-equal answers, so one signature
/// serves them all. Distributions and licenses are named by their build number, which changes
/// whenever either is reloaded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub latest: bool,
    pub distribution_build: u64,
    pub license_build: Option<u64>,
    pub expires: i64,
    /// The answer's `server_time` (Unix seconds). It is inside the signed bytes, so a cached
    /// signature serves only answers made within the same second: what that costs is one RSA
    /// signature per distinct QueryID-less answer per second it is asked in (before issue 10:
    /// per minute, the step of `expires`), about a quarter of a millisecond each, and entries
    /// of past seconds that the bounded cache evicts. Checks with a QueryID never used it.
    pub server_time: i64,
    /// show untested, count downloads, downloadable only, sees prereleases.
    pub flags: [bool; 4],
    pub installed_version: Box<str>,
    pub conf: Box<str>,
    pub conf_version: Box<str>,
}

/// Signatures of answers without a QueryID, bounded (entries are a few hundred bytes).
pub struct SignatureCache {
    cache: quick_cache::sync::Cache<AnswerKey, Arc<str>>,
}

impl SignatureCache {
    pub fn new(entries: usize) -> Self {
        SignatureCache {
            cache: quick_cache::sync::Cache::new(entries),
        }
    }

    pub fn get(&self, key: &AnswerKey) -> Option<Arc<str>> {
        self.cache.get(key)
    }

    pub fn insert(&self, key: AnswerKey, signature: Arc<str>) {
        self.cache.insert(key, signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::File;
    use crate::domain::matching::CompatEntry;
    use chrono::TimeZone;
    use vypusk_protocol::wire::{Module, ModuleFile, ReleasesResponse};
    use vypusk_protocol::{Version, VersionScheme};

    const TRICKY: &str = "Телефония \"Про\" \\ <b>&amp;</b>\n\t\u{1}\u{7f}\u{2028} 😀 / ~";

    fn file(id: i32, name: &str, size: u64) -> File {
        let md5 = [id as u8; 16];
        let sha256 = [(id + 1) as u8; 32];
        File {
            id,
            size,
            md5,
            sha256,
            json: render_file(name, size, &md5, &sha256),
        }
    }

    fn release(id: i32, version: &str, files: Vec<File>) -> Release {
        let v = Version::parse(VersionScheme::OneC, version).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        let main_size = files.first().map_or(0, |f| f.size);
        let one_c = |s: &str| Version::parse_1c(s).unwrap();
        // Lists of every shape: empty, a bound, both bounds, the wildcard, a tricky name.
        let compatibility: Arc<[CompatEntry]> = match id % 3 {
            0 => Arc::new([]),
            1 => vec![CompatEntry::new("УТ", one_c("11.5"), None)].into(),
            _ => vec![
                CompatEntry::new(TRICKY, one_c("11.5.1.2"), Some(one_c("11.6"))),
                CompatEntry::new("*", one_c("0"), None),
            ]
            .into(),
        };
        Release {
            id,
            json: render_release(id, &v.to_string(), at, id % 2 == 0, TRICKY, main_size),
            version: v,
            published_at: at,
            prerelease: id % 2 == 0,
            compatibility_json: render_compatibility(&compatibility),
            compatibility,
            extension_hash: None,
            files: files.into(),
        }
    }

    fn distribution(releases: Vec<Release>, scheme: VersionScheme) -> Distribution {
        let gate = Some((85, 43));
        Distribution {
            id: 3,
            build: 1,
            code: "ТЕЛ_PRO".into(),
            name: TRICKY.into(),
            description: "описание".into(),
            developer: "ООО \"Ромашка\"".into(),
            label: "Pro".into(),
            promo_link: "https://example.com/?a=1&b=\"2\"".into(),
            gate,
            published: true,
            hide_unlicensed: false,
            scheme,
            json: render_distribution(
                "ТЕЛ_PRO",
                TRICKY,
                "описание",
                "ООО \"Ромашка\"",
                "Pro",
                "https://example.com/?a=1&b=\"2\"",
                gate,
                scheme,
            ),
            releases: releases.into(),
        }
    }

    /// The reference: the wire structs serialized by serde_json, as the server did before.
    fn reference(
        dist: &Distribution,
        offers: &[Offer<'_>],
        links: &Links<'_>,
        now: DateTime<Utc>,
    ) -> Vec<u8> {
        let modules = offers
            .iter()
            .map(|o| {
                let r = o.release;
                let url = |f: &File| match o.access {
                    Ok(()) => format!(
                        "https://updates.example.com/releases/v1/files/{}/{}",
                        links.token(dist, r),
                        f.json.url_name()
                    ),
                    Err(_) => String::new(),
                };
                let files: Vec<ModuleFile> = r
                    .files
                    .iter()
                    .map(|f| ModuleFile {
                        name: f.name().to_string(),
                        size: f.size,
                        url: url(f),
                        md5: hex::encode(f.md5),
                        sha256: hex::encode(f.sha256),
                    })
                    .collect();
                Module {
                    release_id: r.id.into(),
                    uniqid: r.version.to_string(),
                    version: dist.label.to_string(),
                    developer: dist.developer.to_string(),
                    min_1c_version: o.min_1c_version.to_owned(),
                    lic_product_id: 85,
                    lic_feature_id: 43,
                    name: dist.name.to_string(),
                    description: dist.description.to_string(),
                    promo_link: dist.promo_link.to_string(),
                    changelog: r.changelog(),
                    size: r.main_file().map_or(0, |f| f.size),
                    download_link: files.first().map(|f| f.url.clone()).unwrap_or_default(),
                    files,
                    published_at: rfc3339(r.published_at),
                    prerelease: r.prerelease,
                    untested: o.untested,
                    downloadable: o.access.is_ok(),
                    result: o.access.clone().err().unwrap_or_default(),
                    distribution: dist.code.to_string(),
                    version_scheme: dist.scheme.to_string(),
                    compatibility: r
                        .compatibility
                        .iter()
                        .map(|c| Compatibility {
                            conf: c.conf.to_string(),
                            min_1c_version: c.min.to_string(),
                            max_1c_version: c.max.as_ref().map(|m| m.to_string()),
                        })
                        .collect(),
                }
            })
            .collect();
        let result = offers
            .iter()
            .find_map(|o| o.access.as_ref().err().cloned())
            .unwrap_or_default();
        serde_json::to_vec(&ReleasesResponse {
            modules,
            result,
            server_time: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
        .unwrap()
    }

    #[test]
    fn answers_are_byte_for_byte_what_serde_makes_of_the_wire_structs() {
        for scheme in [VersionScheme::OneC, VersionScheme::Semver] {
            answers_match_serde(scheme);
        }
    }

    fn answers_match_serde(scheme: VersionScheme) {
        let dist = distribution(
            vec![
                release(
                    11,
                    "2.0.0.1",
                    vec![
                        file(1, "Расширение \"Про\".cfe", 12345),
                        file(2, "read me.txt", 7),
                    ],
                ),
                release(10, "1.0.0.9", vec![file(3, "a+b&c/d%e.zip", 0)]),
                release(9, "1.0.0.1", vec![]),
            ],
            scheme,
        );
        let links = Links {
            base: "https://updates.example.com",
            key: &TokenKey::new(b"secret"),
            expires: 2_000_000_000,
            license: Some(77),
            count: true,
            conf: "УправлениеТорговлей",
            conf_version: "11.5.1.1",
            installed_version: "1.0",
        };
        let offer = |i: usize, access: Result<(), String>, untested: bool| Offer {
            release: &dist.releases[i],
            untested,
            min_1c_version: dist.releases[i]
                .compatibility
                .first()
                .map_or("", |c| &*c.min_text),
            access,
        };
        let cases: Vec<Vec<Offer<'_>>> = vec![
            vec![],
            vec![offer(0, Ok(()), false)],
            vec![
                offer(0, Ok(()), true),
                offer(1, Err(TRICKY.into()), false),
                offer(2, Ok(()), false),
            ],
            vec![offer(2, Err("lapsed".into()), true)],
        ];
        let times = [
            Utc.with_ymd_and_hms(2026, 11, 30, 10, 53, 7).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 10, 53, 8).unwrap(),
            Utc.with_ymd_and_hms(1999, 1, 2, 3, 4, 5).unwrap(),
        ];
        for offers in &cases {
            for now in times {
                let ours = write_answer(&dist, offers, &links, now.timestamp());
                let theirs = reference(&dist, offers, &links, now);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
    }
}
