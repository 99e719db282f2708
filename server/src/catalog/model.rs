//! The read model the client protocol answers from: what a published distribution, release and
//! file are once loaded, in compact form (ids, `Box<str>`, raw digests), each with the parts of
//! its `getAvailableReleases` module that never change rendered once (SPEC §4.1; issue 9). How
//! these are loaded is `load`'s business; how an answer is assembled from them is
//! `crate::answer`'s.

use std::sync::Arc;

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

    /// The newest published release that is not a pre-release: what "up to date" means in
    /// the reports.
    pub fn newest_release(&self) -> Option<&Release> {
        self.releases.iter().find(|r| !r.prerelease)
    }
}

#[derive(Debug)]
pub struct Release {
    pub id: i32,
    pub version: Version,
    pub published_at: DateTime<Utc>,
    pub prerelease: bool,
    /// Shared with every release of the same load that has an equal list.
    pub compatibility: Arc<[CompatEntry]>,
    /// `compatibility` as the module's JSON array (issue 10), shared like the list.
    pub compatibility_json: Arc<str>,
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
        self.files.iter().find(|f| f.name() == name)
    }

    /// The changelog, decoded from its rendered form (kept once, not twice).
    pub fn changelog(&self) -> String {
        serde_json::from_str(self.json.changelog()).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct File {
    pub id: i32,
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: [u8; 32],
    pub json: FileJson,
}

impl File {
    pub fn name(&self) -> &str {
        self.json.name()
    }

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
    /// `,"distribution":"CODE","version_scheme":"1c","compatibility":` (the release's list
    /// and the closing `}` follow).
    pub end: Box<str>,
}

/// Strings kept end to end in one allocation (the catalog holds 100 000s of them: one
/// allocation instead of `N` saves their headers and pointers).
#[derive(Debug, Clone)]
pub struct Parts<const N: usize> {
    text: Box<str>,
    ends: [u32; N],
}

impl<const N: usize> Default for Parts<N> {
    fn default() -> Self {
        Parts {
            text: Box::default(),
            ends: [0; N],
        }
    }
}

impl<const N: usize> Parts<N> {
    pub fn new(parts: [&str; N]) -> Self {
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; N];
        for (i, part) in parts.iter().enumerate() {
            text.push_str(part);
            ends[i] = u32::try_from(text.len()).expect("catalog strings are far below 4 GiB");
        }
        Parts {
            text: text.into_boxed_str(),
            ends,
        }
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// Parts of a module that come from the release, JSON-escaped: `{"release_id":…,"uniqid":…,`;
/// the changelog as a JSON string; `,"size":…,"download_link":`;
/// `],"published_at":…,"prerelease":…,"untested":`.
#[derive(Debug, Default, Clone)]
pub struct ReleaseJson(pub Parts<4>);

impl ReleaseJson {
    pub fn head(&self) -> &str {
        self.0.get(0)
    }
    pub fn changelog(&self) -> &str {
        self.0.get(1)
    }
    pub fn size(&self) -> &str {
        self.0.get(2)
    }
    pub fn after_files(&self) -> &str {
        self.0.get(3)
    }
}

/// A file's name, the parts of its entry, JSON-escaped (`{"name":…,"size":…,"url":` and
/// `,"md5":…,"sha256":…}`), and its name as the download URL's last segment.
#[derive(Debug, Default, Clone)]
pub struct FileJson(pub Parts<4>);

impl FileJson {
    pub fn name(&self) -> &str {
        self.0.get(0)
    }
    pub fn head(&self) -> &str {
        self.0.get(1)
    }
    pub fn tail(&self) -> &str {
        self.0.get(2)
    }
    pub fn url_name(&self) -> &str {
        self.0.get(3)
    }
}
