//! The read model the client protocol answers from: what a published distribution, release and
//! file are once loaded, in compact form (ids, `Box<str>`, raw digests), each with the parts of
//! its `getAvailableReleases` module that never change rendered once (SPEC §4.1; issue 9). How
//! these are loaded is `load`'s business; how an answer is assembled from them is
//! `crate::answer`'s.

use chrono::{DateTime, Utc};
use vypusk_protocol::{Version, VersionScheme};

use crate::domain::matching::CompatEntry;

#[derive(Debug)]
pub struct Distribution {
    pub id: i32,
    /// A number unique to this build of the distribution in this process: answers cached for
    /// one build are never served for another (see `crate::answer`).
    pub build: u64,
    pub code: Box<str>,
    pub name: Box<str>,
    pub description: Box<str>,
    pub developer: Box<str>,
    pub label: Box<str>,
    pub promo_link: Box<str>,
    /// `(lic_product_id, lic_feature_id)`; `None` = free.
    pub gate: Option<(i64, i64)>,
    pub published: bool,
    pub hide_unlicensed: bool,
    pub scheme: VersionScheme,
    /// Published releases only, newest first.
    pub releases: Box<[Release]>,
    pub json: DistributionJson,
}

impl Distribution {
    pub fn release(&self, id: i32) -> Option<&Release> {
        self.releases.iter().find(|r| r.id == id)
    }
}

#[derive(Debug)]
pub struct Release {
    pub id: i32,
    pub version: Version,
    pub published_at: DateTime<Utc>,
    pub prerelease: bool,
    pub compatibility: Box<[CompatEntry]>,
    /// The `extension_hash` metadata entry, the only one the client protocol reads.
    pub extension_hash: Option<Box<str>>,
    /// Main file first.
    pub files: Box<[File]>,
    pub json: ReleaseJson,
}

impl Release {
    pub fn main_file(&self) -> Option<&File> {
        self.files.first()
    }

    /// Files of one release have distinct names (SPEC §3, case-insensitively even).
    pub fn file_named(&self, name: &str) -> Option<&File> {
        self.files.iter().find(|f| &*f.name == name)
    }

    /// The changelog, decoded from its rendered form (kept once, not twice).
    pub fn changelog(&self) -> String {
        serde_json::from_str(&self.json.changelog).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct File {
    pub id: i32,
    pub name: Box<str>,
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: [u8; 32],
    pub json: FileJson,
}

impl File {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Parts of a module that come from the distribution, JSON-escaped.
#[derive(Debug, Default)]
pub struct DistributionJson {
    /// `"version":…,"developer":…,"min_1c_version":`
    pub before_min: Box<str>,
    /// `,"lic_product_id":…,"lic_feature_id":…,"name":…,"description":…,"promo_link":…,"changelog":`
    pub before_changelog: Box<str>,
    /// `,"distribution":"CODE"}`
    pub end: Box<str>,
}

/// Parts of a module that come from the release, JSON-escaped.
#[derive(Debug, Default, Clone)]
pub struct ReleaseJson {
    /// `{"release_id":…,"uniqid":…,`
    pub head: Box<str>,
    /// The changelog as a JSON string.
    pub changelog: Box<str>,
    /// `,"size":…,"download_link":`
    pub size: Box<str>,
    /// `],"published_at":…,"prerelease":…,"untested":`
    pub after_files: Box<str>,
}

/// Parts of a file entry, JSON-escaped, and its name as a URL path segment.
#[derive(Debug, Default, Clone)]
pub struct FileJson {
    /// `{"name":…,"size":…,"url":`
    pub head: Box<str>,
    /// `,"md5":…,"sha256":…}`
    pub tail: Box<str>,
    /// The name percent-encoded for the download URL's last segment.
    pub url_name: Box<str>,
}
