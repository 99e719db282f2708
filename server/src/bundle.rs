//! Offline bundles for the vendor (issue 10): one release, for one license, as a tar that a
//! machine without network access installs from (layout: `vypusk_protocol::bundle`).
//!
//! Two steps, shared by `GET /api/v1/releases/{id}/bundle` and `vypusk bundle`:
//! 1. [`plan`] makes every check and everything small: the release must be published (and its
//!    distribution too) and downloadable for the license by the same rules as a check
//!    (`domain::licensing`), ignoring the configuration and the installed version; the answer
//!    is rendered by the check answer's own renderer (`answer::write_answer`) for that one
//!    module and signed with a fresh QueryID; every file's bytes are looked up in storage. An
//!    error here means nothing was written or sent.
//! 2. [`BundlePlan::into_stream`] yields the archive's bytes: the header and answer entries,
//!    then each file streamed from storage (never held whole), then the end of the archive.
//!    Its length is known beforehand ([`BundlePlan::len`]).
//!
//! A bundle is not a download: nothing is counted in the statistics.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::HeaderValue;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::io::AsyncWriteExt;
use vypusk_protocol::bundle::{self as layout, BundleHeader};
use vypusk_storage::{BlobKey, Storage, StorageError};

use crate::answer::{Links, write_answer};
use crate::catalog::{Catalog, Distribution, STATUS_PUBLISHED};
use crate::domain::LicenseKey;
use crate::domain::licensing;
use crate::domain::matching::match_compatibility;
use crate::domain::selection::Offer;
use crate::entities::release;
use crate::signing::Signer;
use crate::state::AppState;
use crate::tokens::TokenSigner;

/// What a bundle is made from: the server's catalog, storage and keys. The route takes them
/// from its state; `vypusk bundle` opens them on the data directory.
#[derive(Clone)]
pub struct BundleSources {
    pub db: DatabaseConnection,
    pub catalog: Catalog,
    pub storage: Storage,
    pub signer: Arc<Signer>,
    pub tokens: Arc<TokenSigner>,
    /// The public URL, JSON-escaped without quotes (base of the answer's links).
    pub public_url_json: Arc<str>,
}

impl BundleSources {
    pub fn of(state: &AppState) -> BundleSources {
        BundleSources {
            db: state.db.clone(),
            catalog: state.catalog.clone(),
            storage: state.storage.clone(),
            signer: state.signer.clone(),
            tokens: state.tokens.clone(),
            public_url_json: state.public_url_json.clone(),
        }
    }
}

/// Why no bundle was made; each says so in a sentence (the license refusals in the very words
/// of a check answer's `result`).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// No release with this id (404).
    #[error("release {0} not found")]
    UnknownRelease(i32),
    /// A draft, a yanked release, or one of an unpublished distribution (409).
    #[error("{0}")]
    NotPublished(String),
    /// The license is missing for a paid distribution, or malformed (400).
    #[error("{0}")]
    BadLicense(String),
    /// The license may not download the release: unknown, revoked, without the feature,
    /// subscription ended, or a prerelease without `beta` (422).
    #[error("{0}")]
    NotDownloadable(String),
    /// Storage or database failure, or a file whose bytes are missing (500).
    #[error("{0}")]
    Internal(String),
}

impl From<sea_orm::DbErr> for BundleError {
    fn from(e: sea_orm::DbErr) -> Self {
        BundleError::Internal(format!("database: {e}"))
    }
}

/// One file entry of a planned bundle.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub name: String,
    pub size: u64,
    key: BlobKey,
}

/// A bundle whose checks all passed: the header, the signed answer and the files to stream.
pub struct BundlePlan {
    pub header: BundleHeader,
    header_json: Vec<u8>,
    answer: Bytes,
    files: Vec<PlannedFile>,
    /// Modification time of every entry: when the answer was made.
    mtime: u64,
    len: u64,
    storage: Storage,
}

impl BundlePlan {
    /// Exact length of the archive in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The signed answer (`answer.json`).
    pub fn answer(&self) -> &[u8] {
        &self.answer
    }

    pub fn files(&self) -> &[PlannedFile] {
        &self.files
    }

    /// `<TYPE>-<version>.vypusk-bundle.tar`: codes are `[A-Za-z0-9_.-]` and versions dots,
    /// digits, letters, `-` and `+`, so the name needs no quoting.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}.vypusk-bundle.tar",
            self.header.distribution, self.header.version
        )
    }

    /// The archive's bytes. A file whose stored bytes end early or run long fails the stream
    /// (the receiver then has fewer bytes than [`BundlePlan::len`]) instead of shifting every
    /// entry after it.
    pub fn into_stream(self) -> BoxStream<'static, io::Result<Bytes>> {
        let mut segments = Vec::with_capacity(2 * self.files.len() + 2);
        let mut head = Vec::new();
        let push_entry = |out: &mut Vec<u8>, path: &str, bytes: &[u8]| -> io::Result<()> {
            out.extend(layout::entry_header(path, bytes.len() as u64, self.mtime)?);
            out.extend_from_slice(bytes);
            out.extend(std::iter::repeat_n(
                0u8,
                layout::padding(bytes.len() as u64),
            ));
            Ok(())
        };
        let prepared = push_entry(&mut head, layout::HEADER_ENTRY, &self.header_json)
            .and_then(|()| push_entry(&mut head, layout::ANSWER_ENTRY, &self.answer));
        if let Err(e) = prepared {
            return stream::once(async move { Err(e) }).boxed();
        }
        // Each segment: bytes to send, or a file to stream; a file's padding goes in front of
        // the next entry's header.
        let mut pending = head;
        for file in self.files {
            match layout::entry_header(&layout::file_entry(&file.name), file.size, self.mtime) {
                Ok(h) => pending.extend(h),
                Err(e) => return stream::once(async move { Err(e) }).boxed(),
            }
            segments.push(Segment::Bytes(Bytes::from(std::mem::take(&mut pending))));
            pending.extend(std::iter::repeat_n(0u8, layout::padding(file.size)));
            segments.push(Segment::File(file));
        }
        pending.extend_from_slice(&layout::END_OF_ARCHIVE);
        segments.push(Segment::Bytes(Bytes::from(pending)));
        let storage = self.storage;
        stream::iter(segments)
            .then(move |segment| {
                let storage = storage.clone();
                async move {
                    let part: BoxStream<'static, io::Result<Bytes>> = match segment {
                        Segment::Bytes(b) => stream::once(async move { Ok(b) }).boxed(),
                        Segment::File(file) => {
                            let body = storage
                                .get(&file.key, None)
                                .await
                                .map_err(|e| storage_io(&file.name, e))?;
                            exactly(body, file)
                        }
                    };
                    io::Result::Ok(part)
                }
            })
            .try_flatten()
            .boxed()
    }
}

enum Segment {
    Bytes(Bytes),
    File(PlannedFile),
}

fn storage_io(name: &str, e: StorageError) -> io::Error {
    io::Error::other(format!("reading the bytes of {name:?} from storage: {e}"))
}

/// `body`, which must be exactly `file.size` bytes.
fn exactly(
    body: BoxStream<'static, Result<Bytes, StorageError>>,
    file: PlannedFile,
) -> BoxStream<'static, io::Result<Bytes>> {
    stream::unfold(Some((body, 0u64, file)), |state| async move {
        let (mut body, seen, file) = state?;
        match body.next().await {
            Some(Ok(chunk)) => {
                let seen = seen + chunk.len() as u64;
                if seen > file.size {
                    let e = io::Error::other(format!(
                        "{:?} in storage is longer than its recorded {} bytes",
                        file.name, file.size
                    ));
                    return Some((Err(e), None));
                }
                Some((Ok(chunk), Some((body, seen, file))))
            }
            Some(Err(e)) => Some((Err(storage_io(&file.name, e)), None)),
            None if seen == file.size => None,
            None => {
                let e = io::Error::other(format!(
                    "{:?} in storage ended after {seen} of its {} bytes",
                    file.name, file.size
                ));
                Some((Err(e), None))
            }
        }
    })
    .boxed()
}

/// Checks everything and prepares the bundle of release `release_id` for `license` (optional
/// for free distributions).
pub async fn plan(
    src: &BundleSources,
    release_id: i32,
    license: Option<&str>,
) -> Result<BundlePlan, BundleError> {
    let dist = published_release(src, release_id).await?;
    let release = dist
        .release(release_id)
        .ok_or(BundleError::UnknownRelease(release_id))?;
    if !dist.published {
        return Err(BundleError::NotPublished(format!(
            "distribution {} is not published, which hides all its releases",
            dist.code
        )));
    }

    // The license, by the rules of a check (SPEC §4.1 rule 4).
    let license = match license.map(str::trim).filter(|k| !k.is_empty()) {
        None if dist.gate.is_some() => {
            return Err(BundleError::BadLicense(format!(
                "distribution {} is paid: name the license the bundle is for (?license=KEY)",
                dist.code
            )));
        }
        None => None,
        Some(key) => {
            let key = LicenseKey::parse(key).map_err(BundleError::BadLicense)?;
            // An unknown key of a free distribution is ignored, as a check ignores it.
            src.catalog.license(key.as_str())
        }
    };
    let standing = licensing::standing(dist.gate, license.as_deref());
    // The caller's address is the vendor's, not the customer's: prerelease networks do not
    // apply, only the license's `beta`.
    if release.prerelease && !licensing::sees_prereleases(license.as_deref(), false) {
        return Err(BundleError::NotDownloadable(format!(
            "Release {} is a prerelease; only a license with beta that is not revoked may get it.",
            release.version
        )));
    }
    licensing::downloadable(&standing, release.published_at)
        .map_err(BundleError::NotDownloadable)?;

    // Every file's bytes are there, with the recorded size, before anything is sent.
    let mut files = Vec::with_capacity(release.files.len());
    for f in release.files.iter() {
        let key = BlobKey::from_sha256_hex(&f.sha256_hex())
            .map_err(|e| BundleError::Internal(format!("file {:?}: {e}", f.name())))?;
        let info =
            src.storage.head(&key).await.map_err(|e| {
                BundleError::Internal(format!("the bytes of file {:?}: {e}", f.name()))
            })?;
        if info.size != f.size {
            return Err(BundleError::Internal(format!(
                "file {:?} is {} bytes in storage, {} recorded",
                f.name(),
                info.size,
                f.size
            )));
        }
        files.push(PlannedFile {
            name: f.name().to_owned(),
            size: f.size,
            key,
        });
    }

    // The answer: the one module exactly as a check answer renders it, with links for this
    // license and nothing counted. The bundle is made for no configuration: `min_1c_version`
    // is what a check without CONF reports, `untested` is false, and the installer checks its
    // configuration against the module's `compatibility`.
    let now = chrono::Utc::now();
    let offer = Offer {
        release,
        untested: false,
        min_1c_version: match_compatibility(&release.compatibility, None, None).min_1c_version,
        access: Ok(()),
    };
    let links = Links {
        base: &src.public_url_json,
        key: src.tokens.key(),
        expires: src.tokens.expiry(now.timestamp()),
        license: dist.gate.and(license.as_ref()).map(|l| l.id),
        count: false,
        conf: "",
        conf_version: "",
        installed_version: "",
    };
    let answer = Bytes::from(write_answer(&dist, &[offer], &links, now.timestamp()));

    let query_id = hex::encode(rand::random::<[u8; 16]>());
    let query_header = HeaderValue::from_str(&query_id).expect("hex is a valid header value");
    let signature = src
        .signer
        .sign_answer(Some(query_header), answer.clone())
        .await
        .map_err(|e| BundleError::Internal(format!("signing the answer: {e}")))?;
    let header = BundleHeader {
        format: layout::FORMAT,
        distribution: dist.code.to_string(),
        version: release.version.to_string(),
        query_id,
        signature: signature.to_string(),
        made_by: format!("vypusk/{}", crate::VERSION),
    };
    let header_json = serde_json::to_vec(&header).expect("a bundle header serializes");
    let sizes: Vec<(String, u64)> = files.iter().map(|f| (f.name.clone(), f.size)).collect();
    let len = layout::bundle_len(&header_json, &answer, &sizes)
        .map_err(|e| BundleError::Internal(format!("tar header: {e}")))?;
    Ok(BundlePlan {
        header,
        header_json,
        answer,
        files,
        mtime: now.timestamp().max(0) as u64,
        len,
        storage: src.storage.clone(),
    })
}

/// The distribution holding published release `release_id`, from the catalog; the database
/// says why when the catalog does not have it.
async fn published_release(
    src: &BundleSources,
    release_id: i32,
) -> Result<Arc<Distribution>, BundleError> {
    if let Some(dist) = src.catalog.distribution_of_release(release_id) {
        return Ok(dist);
    }
    let row = release::Entity::find_by_id(release_id)
        .one(&src.db)
        .await?
        .ok_or(BundleError::UnknownRelease(release_id))?;
    if row.status != STATUS_PUBLISHED {
        return Err(BundleError::NotPublished(format!(
            "release {release_id} is {}: only a published release can be bundled",
            row.status
        )));
    }
    // Published a moment ago on another instance (or by the CLI): this catalog has not caught
    // up yet. Read that distribution now instead of failing.
    src.catalog
        .refresh_distribution(&src.db, row.distribution_id)
        .await?;
    src.catalog
        .distribution_of_release(release_id)
        .ok_or_else(|| {
            BundleError::Internal(format!(
                "release {release_id} is published but its version or distribution cannot be read"
            ))
        })
}

/// Writes the bundle to `path` atomically: into a temporary file next to it, flushed to disk,
/// then renamed over `path`. Returns the bytes written.
pub async fn write_file(plan: BundlePlan, path: &Path) -> io::Result<u64> {
    let expected = plan.len();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let written = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut body = plan.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = body.try_next().await? {
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        if written != expected {
            return Err(io::Error::other(format!(
                "wrote {written} bytes, expected {expected}"
            )));
        }
        file.sync_all().await?;
        tokio::fs::rename(&tmp, path).await?;
        // The rename itself survives a crash once the directory is flushed.
        if let Ok(d) = tokio::fs::File::open(&dir).await {
            let _ = d.sync_all().await;
        }
        Ok(written)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written
}
