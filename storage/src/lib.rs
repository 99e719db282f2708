//! Object storage for vypusk.
//!
//! File bytes are content-addressed (`blobs/sha256/<2 hex>/<64 hex>`), so equal files are
//! stored once and a key, once visible, never changes. Uploads are streamed to a temporary
//! key under `tmp/` while md5 and sha256 are computed, and moved to their content key only
//! when complete and verified; readers therefore never see partial or unverified bytes.
//!
//! An upload can stop between the two steps ([`Storage::stage_stream`] returns a
//! [`StagedBlob`]), so the server moves the bytes to their content key inside the database
//! transaction that records the file: blob reclamation (the server's `blobs` module) relies on
//! bytes appearing only while their reference is being committed.

use std::fmt;
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use md5::Md5;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{
    GetOptions, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};

/// Size of one multipart part. Large enough for S3's 5 MiB minimum and for few requests,
/// small enough that a handful of concurrent uploads stay cheap in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading concurrently per upload; together with the part being filled this bounds
/// an upload's memory to about `(MAX_PARTS_IN_FLIGHT + 1) * PART_SIZE`.
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// Read size for local downloads: object_store's own file stream reads 8 KiB per blocking
/// task, which is too slow for multi-GiB files.
const LOCAL_READ_CHUNK: usize = 256 * 1024;
/// Prefix of in-progress uploads; everything below it is garbage once no upload runs.
const TMP_PREFIX: &str = "tmp";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("body exceeds the size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{what} mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("object not found")]
    NotFound,
    #[error("invalid storage URL: {0}")]
    InvalidUrl(String),
    /// The incoming body stream failed (e.g. the client disconnected).
    #[error("reading the upload body failed: {0}")]
    Body(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound,
            e => StorageError::Backend(e.to_string()),
        }
    }
}

/// Content-addressed key of a stored file. Owning the naming here keeps the layout in one
/// place, so the server only ever stores the sha256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    const PREFIX: &'static str = "blobs/sha256/";

    /// Accepts 64 hex digits (either case); the key always uses lowercase.
    pub fn from_sha256_hex(hex: &str) -> Result<BlobKey, StorageError> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StorageError::Backend(format!(
                "not a sha256 hex digest: {hex:?}"
            )));
        }
        let hex = hex.to_ascii_lowercase();
        Ok(BlobKey(format!("{}{}/{}", Self::PREFIX, &hex[..2], hex)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn sha256_hex(&self) -> &str {
        &self.0[self.0.len() - 64..]
    }

    fn path(&self) -> Path {
        Path::from(self.0.as_str())
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub key: BlobKey,
    pub size: u64,
    /// Lowercase hex.
    pub md5: String,
    /// Lowercase hex.
    pub sha256: String,
}

/// Digests the uploader claims; checked before the object becomes visible.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpectedDigests {
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
}

#[derive(Debug)]
enum Backend {
    Local {
        root: PathBuf,
    },
    Memory,
    S3 {
        bucket: String,
        endpoint: Option<String>,
        /// Kept typed because presigning is not part of the `ObjectStore` trait.
        s3: Arc<AmazonS3>,
    },
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
}

/// Where the bytes live. Clone is cheap (Arc inside).
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // describe() rather than the builder's Debug, which could show credentials.
        f.debug_tuple("Storage").field(&self.describe()).finish()
    }
}

fn invalid(msg: impl Into<String>) -> StorageError {
    StorageError::InvalidUrl(msg.into())
}

impl Storage {
    /// `file:///abs/dir`, `memory://`, or
    /// `s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1` with optional
    /// `access_key_id`, `secret_access_key`, `session_token` query parameters (otherwise the
    /// usual `AWS_*` environment variables apply). Unknown parameters are rejected so that a
    /// typo cannot silently fall back to defaults.
    pub fn from_url(url: &str) -> Result<Storage, StorageError> {
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("{url:?}: {e}")))?;
        match parsed.scheme() {
            "file" => {
                if parsed.query().is_some() {
                    return Err(invalid("file:// URLs take no query parameters"));
                }
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| invalid(format!("{url:?}: expected file:///absolute/path")))?;
                Storage::local(&dir)
            }
            "memory" => {
                if parsed.has_host() && parsed.host_str() != Some("")
                    || !matches!(parsed.path(), "" | "/")
                    || parsed.query().is_some()
                {
                    return Err(invalid(format!("{url:?}: expected memory://")));
                }
                Ok(Storage::memory())
            }
            "s3" => Self::s3_from_url(&parsed),
            other => Err(invalid(format!(
                "unsupported scheme {other:?} (use file://, memory:// or s3://)"
            ))),
        }
    }

    fn s3_from_url(url: &url::Url) -> Result<Storage, StorageError> {
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("s3:// URL needs a bucket: s3://bucket?..."))?
            .to_string();
        if !matches!(url.path(), "" | "/") {
            return Err(invalid("s3:// URL must not have a path (use s3://bucket)"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        let mut endpoint = None;
        for (k, v) in url.query_pairs() {
            match &*k {
                "endpoint" => {
                    let ep = url::Url::parse(&v)
                        .map_err(|e| invalid(format!("bad endpoint {v:?}: {e}")))?;
                    if !matches!(ep.scheme(), "http" | "https") {
                        return Err(invalid(format!("endpoint must be http(s): {v:?}")));
                    }
                    builder = builder
                        .with_endpoint(v.trim_end_matches('/'))
                        .with_allow_http(ep.scheme() == "http");
                    endpoint = Some(v.trim_end_matches('/').to_string());
                }
                "region" => builder = builder.with_region(v.into_owned()),
                "access_key_id" => builder = builder.with_access_key_id(v.into_owned()),
                "secret_access_key" => builder = builder.with_secret_access_key(v.into_owned()),
                "session_token" => builder = builder.with_token(v.into_owned()),
                other => {
                    return Err(invalid(format!(
                        "unknown s3:// parameter {other:?} (known: endpoint, region, \
                         access_key_id, secret_access_key, session_token)"
                    )));
                }
            }
        }
        let s3 = Arc::new(
            builder
                .build()
                .map_err(|e| invalid(format!("s3 configuration: {e}")))?,
        );
        Ok(Storage {
            inner: Arc::new(Inner {
                store: s3.clone(),
                backend: Backend::S3 {
                    bucket,
                    endpoint,
                    s3,
                },
            }),
        })
    }

    /// Creates `dir` if missing.
    pub fn local(dir: &FsPath) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Backend(format!("creating {}: {e}", dir.display())))?;
        let root = std::fs::canonicalize(dir)
            .map_err(|e| StorageError::Backend(format!("resolving {}: {e}", dir.display())))?;
        // No automatic cleanup of empty directories: it deletes tmp/ while a concurrent upload
        // is creating a file in it ("File exists" races under parallel uploads). A few empty
        // blobs/sha256/xx/ directories are the price.
        let fs = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Storage {
            inner: Arc::new(Inner {
                store: Arc::new(fs),
                backend: Backend::Local { root },
            }),
        })
    }

    pub fn memory() -> Storage {
        Storage {
            inner: Arc::new(Inner {
                store: Arc::new(InMemory::new()),
                backend: Backend::Memory,
            }),
        }
    }

    /// For logs and status pages: never contains credentials.
    pub fn describe(&self) -> String {
        match &self.inner.backend {
            Backend::Local { root } => format!("file://{}", root.display()),
            Backend::Memory => "memory://".to_string(),
            Backend::S3 {
                bucket,
                endpoint: Some(ep),
                ..
            } => format!("s3://{bucket} (endpoint {ep})"),
            Backend::S3 {
                bucket,
                endpoint: None,
                ..
            } => format!("s3://{bucket} (AWS)"),
        }
    }

    pub fn supports_presign(&self) -> bool {
        matches!(self.inner.backend, Backend::S3 { .. })
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// Streams `body` into storage while computing md5 and sha256, with memory bounded by a
    /// few parts regardless of size. The content key appears only after the body ended,
    /// stayed within `max_size` and matched `expected`; on any error (or if this future is
    /// dropped) the temporary object `tmp/<uuid>` is removed.
    pub async fn put_stream<S, E>(
        &self,
        body: S,
        max_size: u64,
        expected: ExpectedDigests,
    ) -> Result<StoredBlob, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        self.stage_stream(body, max_size, expected)
            .await?
            .publish()
            .await
    }

    /// Like [`Storage::put_stream`] but stops before the content key: the verified bytes stay
    /// under `tmp/` until [`StagedBlob::publish`]. A staged blob dropped unpublished is removed.
    pub async fn stage_stream<S, E>(
        &self,
        body: S,
        max_size: u64,
        expected: ExpectedDigests,
    ) -> Result<StagedBlob, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        let tmp = Path::from(format!("{TMP_PREFIX}/{}", uuid::Uuid::new_v4()));
        let mut guard = TempGuard {
            store: self.store().clone(),
            path: tmp.clone(),
            armed: true,
        };
        let mut up = Upload {
            store: self.store().as_ref(),
            tmp: &tmp,
            md5: Md5::new(),
            sha256: Sha256::new(),
            size: 0,
            pending: Vec::new(),
            pending_len: 0,
            writer: None,
        };
        let result = self.put_inner(&mut up, body, max_size, expected).await;
        match result {
            Ok(blob) => Ok(StagedBlob {
                storage: self.clone(),
                blob,
                guard,
            }),
            Err(e) => {
                if let Some(w) = up.writer.take() {
                    // Removes the local staging file / aborts the S3 multipart upload.
                    let _ = w.abort().await;
                }
                match self.store().delete(&tmp).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => guard.armed = false,
                    Err(de) => tracing::warn!(path = %tmp, error = %de, "removing temp upload"),
                }
                Err(e)
            }
        }
    }

    async fn put_inner<S, E>(
        &self,
        up: &mut Upload<'_>,
        mut body: S,
        max_size: u64,
        expected: ExpectedDigests,
    ) -> Result<StoredBlob, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::Body(e.to_string()))?;
            if chunk.is_empty() {
                continue;
            }
            up.size += chunk.len() as u64;
            if up.size > max_size {
                return Err(StorageError::TooLarge { limit: max_size });
            }
            up.push(chunk).await?;
        }

        let md5: [u8; 16] = up.md5.finalize_reset().into();
        let sha256: [u8; 32] = up.sha256.finalize_reset().into();
        check_digest("md5", expected.md5.as_ref().map(|d| &d[..]), &md5)?;
        check_digest("sha256", expected.sha256.as_ref().map(|d| &d[..]), &sha256)?;
        let sha256 = hex::encode(sha256);
        let key = BlobKey::from_sha256_hex(&sha256)?;

        match up.writer.take() {
            // finish() aborts the upload itself on failure.
            Some(w) => {
                w.finish().await?;
            }
            None => {
                let payload: PutPayload = std::mem::take(&mut up.pending).into_iter().collect();
                self.store().put(up.tmp, payload).await?;
            }
        }
        Ok(StoredBlob {
            key,
            size: up.size,
            md5: hex::encode(md5),
            sha256,
        })
    }

    /// Moves the finished temp object to its content key, or drops it when equal bytes are
    /// already stored.
    async fn publish(&self, tmp: &Path, key: &BlobKey) -> Result<(), StorageError> {
        let store = self.store();
        let dest = key.path();
        match &self.inner.backend {
            Backend::S3 { .. } => {
                // S3 has no portable copy-if-not-exists; content addressing makes a racing
                // overwrite harmless (same bytes), so a head check just saves the copy.
                match store.head(&dest).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => store.copy(tmp, &dest).await?,
                    Err(e) => return Err(e.into()),
                }
                store.delete(tmp).await?;
            }
            // Local: a hard link then unlink, so the content key never shows partial bytes.
            Backend::Local { .. } | Backend::Memory => {
                match store.rename_if_not_exists(tmp, &dest).await {
                    Ok(()) => {}
                    Err(object_store::Error::AlreadyExists { .. }) => store.delete(tmp).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// `NotFound` if missing.
    pub async fn head(&self, key: &BlobKey) -> Result<ObjectInfo, StorageError> {
        let meta = self.store().head(&key.path()).await?;
        Ok(ObjectInfo { size: meta.size })
    }

    /// Streams the object, or `range` of it (end exclusive, validated by the caller), in
    /// bounded chunks.
    pub async fn get(
        &self,
        key: &BlobKey,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        if let Some(r) = &range
            && r.start >= r.end
        {
            // Backends reject empty ranges; an empty body is the sensible answer.
            self.head(key).await?;
            return Ok(futures::stream::empty().boxed());
        }
        let res = self
            .store()
            .get_opts(&key.path(), GetOptions::new().with_range(range))
            .await?;
        let range = res.range.clone();
        match res.payload {
            GetResultPayload::File(file, _) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut file = tokio::fs::File::from_std(file);
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(|e| StorageError::Backend(format!("seek: {e}")))?;
                let reader = file.take(range.end - range.start);
                Ok(
                    tokio_util::io::ReaderStream::with_capacity(reader, LOCAL_READ_CHUNK)
                        .map_err(|e| StorageError::Backend(format!("read: {e}")))
                        .boxed(),
                )
            }
            GetResultPayload::Stream(s) => Ok(s.map_err(StorageError::from).boxed()),
        }
    }

    /// Presigned GET URL valid for `ttl`; `Ok(None)` on backends without presigning.
    pub async fn presigned_get(
        &self,
        key: &BlobKey,
        ttl: Duration,
    ) -> Result<Option<url::Url>, StorageError> {
        match &self.inner.backend {
            Backend::S3 { s3, .. } => {
                let url = s3.signed_url(Method::GET, &key.path(), ttl).await?;
                Ok(Some(url))
            }
            _ => Ok(None),
        }
    }

    /// Missing objects are not an error, so deletes are idempotent.
    pub async fn delete(&self, key: &BlobKey) -> Result<(), StorageError> {
        match self.store().delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored blob (content keys only, not `tmp/`), in no particular order.
    pub fn list_blobs(&self) -> BoxStream<'static, Result<BlobKey, StorageError>> {
        let prefix = Path::from(BlobKey::PREFIX.trim_end_matches('/'));
        self.store()
            .list(Some(&prefix))
            .map_err(StorageError::from)
            .try_filter_map(|meta| async move {
                // Anything that is not a well-formed content key is not ours to judge.
                let name = meta.location.filename().unwrap_or_default();
                Ok(BlobKey::from_sha256_hex(name)
                    .ok()
                    .filter(|key| key.path() == meta.location))
            })
            .boxed()
    }

    /// Removes leftovers of interrupted uploads under `tmp/`. Call it at start-up only: it
    /// would also remove the temp objects of uploads running concurrently. Incomplete S3
    /// multipart uploads are invisible here; use a bucket lifecycle rule
    /// (AbortIncompleteMultipartUpload) for those.
    pub async fn remove_incomplete_uploads(&self) -> Result<usize, StorageError> {
        if let Backend::Local { root } = &self.inner.backend {
            // object_store hides its staging files (`<name>#<n>`) from list(), so walk the
            // directory ourselves.
            let dir = root.join(TMP_PREFIX);
            return tokio::task::spawn_blocking(move || remove_files_under(&dir))
                .await
                .map_err(|e| StorageError::Backend(e.to_string()))?
                .map_err(|e| StorageError::Backend(format!("cleaning tmp/: {e}")));
        }
        let store = self.store();
        let paths: Vec<Path> = store
            .list(Some(&Path::from(TMP_PREFIX)))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        let mut removed = 0;
        for p in paths {
            match store.delete(&p).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }
}

/// Recursively deletes every file under `dir` (which may not exist), then the empty dirs.
fn remove_files_under(dir: &FsPath) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += remove_files_under(&path)?;
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    // Best effort: a concurrent writer may have just created something in it.
    let _ = std::fs::remove_dir(dir);
    Ok(removed)
}

fn check_digest(
    what: &'static str,
    expected: Option<&[u8]>,
    actual: &[u8],
) -> Result<(), StorageError> {
    match expected {
        Some(exp) if exp != actual => Err(StorageError::DigestMismatch {
            what,
            expected: hex::encode(exp),
            actual: hex::encode(actual),
        }),
        _ => Ok(()),
    }
}

/// State of one upload. Small bodies are buffered (up to one part) and written with a single
/// put, which saves S3 the three multipart requests.
struct Upload<'a> {
    store: &'a dyn ObjectStore,
    tmp: &'a Path,
    md5: Md5,
    sha256: Sha256,
    size: u64,
    pending: Vec<Bytes>,
    pending_len: usize,
    writer: Option<WriteMultipart>,
}

impl Upload<'_> {
    async fn push(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        // Hashing inline keeps one pass over the bytes and no extra task hand-off.
        self.md5.update(&chunk);
        self.sha256.update(&chunk);
        if let Some(w) = &mut self.writer {
            // Back-pressure: the body is not polled while too many parts are in flight.
            w.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
            w.put(chunk);
            return Ok(());
        }
        self.pending_len += chunk.len();
        self.pending.push(chunk);
        if self.pending_len >= PART_SIZE {
            let upload = self.store.put_multipart(self.tmp).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            for c in self.pending.drain(..) {
                w.put(c);
            }
            self.pending_len = 0;
            self.writer = Some(w);
        }
        Ok(())
    }
}

/// Verified bytes of an upload, still under `tmp/`: [`StagedBlob::publish`] moves them to their
/// content key; dropping it unpublished removes them.
pub struct StagedBlob {
    storage: Storage,
    blob: StoredBlob,
    guard: TempGuard,
}

impl fmt::Debug for StagedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedBlob")
            .field("blob", &self.blob)
            .field("tmp", &self.guard.path)
            .finish()
    }
}

impl StagedBlob {
    /// Size, digests and the content key the bytes will have.
    pub fn blob(&self) -> &StoredBlob {
        &self.blob
    }

    /// Moves the bytes to their content key (or drops them when equal bytes are already
    /// stored). On error the temp object is still removed (when the guard drops).
    pub async fn publish(mut self) -> Result<StoredBlob, StorageError> {
        self.storage
            .publish(&self.guard.path, &self.blob.key)
            .await?;
        self.guard.armed = false;
        Ok(self.blob)
    }
}

/// Removes the temp object if `put_stream` is cancelled (e.g. the client went away and the
/// request future was dropped); explicit error paths clean up synchronously instead.
struct TempGuard {
    store: Arc<dyn ObjectStore>,
    path: Path,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let path = std::mem::take(&mut self.path);
            rt.spawn(async move {
                let _ = store.delete(&path).await;
            });
        }
    }
}

#[cfg(test)]
mod tests;
