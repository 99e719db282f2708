//! `getAvailableReleases` / `getLatestRelease` answers written straight into one buffer (issue
//! 9): everything that does not depend on the request is rendered once per catalog build
//! (`render_*`, called by the loader), and an answer adds only the download links,
//! `min_1c_version` and the per-request flags. The bytes are exactly what serde_json makes of
//! `vypusk_protocol::wire::ReleasesResponse` (SPEC §4.1), which the tests below prove.
//!
//! Signatures of answers without a `Licence-QueryID` are cached under what the answer depends
//! on ([`AnswerKey`]), so a repeated check costs no RSA and no hashing of the body.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use vypusk_formats::token::{DownloadGrant, TokenKey};

use crate::catalog::{Distribution, DistributionJson, FileJson, Parts, Release, ReleaseJson};
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

pub fn render_distribution(
    code: &str,
    name: &str,
    description: &str,
    developer: &str,
    label: &str,
    promo_link: &str,
    gate: Option<(i64, i64)>,
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
        end: format!(",\"distribution\":{}}}", json_str(code)).into(),
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

/// The answer `{"modules":[…],"result":…}` for `offers` of `dist`.
pub fn write_answer(dist: &Distribution, offers: &[Offer<'_>], links: &Links<'_>) -> Vec<u8> {
    let estimate: usize = offers
        .iter()
        .map(|o| {
            256 + o.release.json.changelog().len()
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
        Release {
            id,
            json: render_release(id, &v.to_string(), at, id % 2 == 0, TRICKY, main_size),
            version: v,
            published_at: at,
            prerelease: id % 2 == 0,
            compatibility: vec![CompatEntry::new(
                "УТ",
                Version::parse_1c("11.5").unwrap(),
                None,
            )]
            .into(),
            extension_hash: None,
            files: files.into(),
        }
    }

    fn distribution(releases: Vec<Release>) -> Distribution {
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
            scheme: VersionScheme::OneC,
            json: render_distribution(
                "ТЕЛ_PRO",
                TRICKY,
                "описание",
                "ООО \"Ромашка\"",
                "Pro",
                "https://example.com/?a=1&b=\"2\"",
                gate,
            ),
            releases: releases.into(),
        }
    }

    /// The reference: the wire structs serialized by serde_json, as the server did before.
    fn reference(dist: &Distribution, offers: &[Offer<'_>], links: &Links<'_>) -> Vec<u8> {
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
                }
            })
            .collect();
        let result = offers
            .iter()
            .find_map(|o| o.access.as_ref().err().cloned())
            .unwrap_or_default();
        serde_json::to_vec(&ReleasesResponse { modules, result }).unwrap()
    }

    #[test]
    fn answers_are_byte_for_byte_what_serde_makes_of_the_wire_structs() {
        let dist = distribution(vec![
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
        ]);
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
            min_1c_version: &dist.releases[i].compatibility[0].min_text,
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
        for offers in &cases {
            let ours = write_answer(&dist, offers, &links);
            let theirs = reference(&dist, offers, &links);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
