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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
/// Read size for local downloads: one blocking read (and one `spawn_blocking`) per chunk.
/// object_store's own file stream reads 8 KiB per blocking task, far too slow for GiB files.
const LOCAL_READ_CHUNK: usize = 1024 * 1024;
/// Chunks a local download reads ahead of the client. A download holds at most
/// `LOCAL_READ_AHEAD + 2` chunks (queued, being read, being sent), whatever the file size.
const LOCAL_READ_AHEAD: usize = 2;
/// Uploads are hashed on two blocking threads (md5, sha256) once they pass this size, in
/// batches of about this size; smaller bodies are hashed inline on the request task.
const HASH_BATCH: usize = 1024 * 1024;
/// Batches queued per hashing thread: bounds what hashing holds to a few MiB per upload.
const HASH_QUEUE: usize = 4;
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
    local_reads: Arc<LocalReads>,
}

/// What the local download readers are doing (read by the tests: a dropped download must stop
/// its reader).
#[derive(Debug, Default)]
struct LocalReads {
    /// Readers running (their task not yet ended).
    active: AtomicUsize,
    /// Bytes read from files, all readers together.
    bytes: AtomicU64,
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
                local_reads: Arc::default(),
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
                local_reads: Arc::default(),
            }),
        })
    }

    pub fn memory() -> Storage {
        Storage {
            inner: Arc::new(Inner {
                store: Arc::new(InMemory::new()),
                backend: Backend::Memory,
                local_reads: Arc::default(),
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
            hash: Hashing::default(),
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
                // Ends the hashing threads (their channels close) without waiting for them.
                drop(std::mem::take(&mut up.hash));
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

        let (md5, sha256) = up.hash.finish().await?;
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
            GetResultPayload::File(file, _) => Ok(local_read_stream(
                file,
                range,
                self.inner.local_reads.clone(),
            )),
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
    hash: Hashing,
    size: u64,
    pending: Vec<Bytes>,
    pending_len: usize,
    writer: Option<WriteMultipart>,
}

impl Upload<'_> {
    async fn push(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        // Back-pressure from the hashing threads too: the body is not polled while their
        // queues are full.
        self.hash.update(&chunk).await?;
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

/// md5 and sha256 of an upload. Up to [`HASH_BATCH`] bytes are only collected (and hashed
/// inline at the end, which is all a small upload needs); past that, md5 and sha256 each run
/// on a blocking thread of their own, fed batches of the body's chunks (shared `Bytes`, no
/// copy) through a bounded channel. So the two digests run in parallel with each other and
/// with receiving and writing the body, and an upload takes about as long as its slowest part
/// (md5) instead of md5 + sha256 one after the other on the request task.
///
/// Dropping it (error, cancelled request) closes the channels: each thread hashes what is
/// queued (at most [`HASH_QUEUE`] batches) and ends.
#[derive(Default)]
struct Hashing {
    batch: Vec<Bytes>,
    batch_len: usize,
    lanes: Option<(HashLane<Md5>, HashLane<Sha256>)>,
}

impl Hashing {
    async fn update(&mut self, chunk: &Bytes) -> Result<(), StorageError> {
        self.batch_len += chunk.len();
        self.batch.push(chunk.clone());
        if self.batch_len >= HASH_BATCH {
            let batch: Arc<[Bytes]> = std::mem::take(&mut self.batch).into();
            self.batch_len = 0;
            let (md5, sha256) = self
                .lanes
                .get_or_insert_with(|| (HashLane::spawn(), HashLane::spawn()));
            md5.send(batch.clone()).await?;
            sha256.send(batch).await?;
        }
        Ok(())
    }

    /// The digests of everything passed to [`Hashing::update`].
    async fn finish(&mut self) -> Result<([u8; 16], [u8; 32]), StorageError> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        match self.lanes.take() {
            None => {
                let (mut md5, mut sha256) = (Md5::new(), Sha256::new());
                for chunk in &batch {
                    md5.update(chunk);
                    sha256.update(chunk);
                }
                Ok((md5.finalize().into(), sha256.finalize().into()))
            }
            Some((md5, sha256)) => {
                let batch: Arc<[Bytes]> = batch.into();
                md5.send(batch.clone()).await?;
                sha256.send(batch).await?;
                let md5 = md5.finish().await?;
                let sha256 = sha256.finish().await?;
                Ok((md5.finalize().into(), sha256.finalize().into()))
            }
        }
    }
}

/// One digest computed on a blocking thread from batches sent through a bounded channel.
struct HashLane<D> {
    tx: tokio::sync::mpsc::Sender<Arc<[Bytes]>>,
    done: tokio::task::JoinHandle<D>,
}

impl<D: Digest + Send + 'static> HashLane<D> {
    fn spawn() -> HashLane<D> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Arc<[Bytes]>>(HASH_QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            let mut digest = D::new();
            while let Some(batch) = rx.blocking_recv() {
                for chunk in batch.iter() {
                    digest.update(chunk);
                }
            }
            digest
        });
        HashLane { tx, done }
    }

    async fn send(&self, batch: Arc<[Bytes]>) -> Result<(), StorageError> {
        self.tx
            .send(batch)
            .await
            .map_err(|_| StorageError::Backend("a hashing thread stopped".into()))
    }

    /// Closes the channel and waits for the thread to hash what is queued.
    async fn finish(self) -> Result<D, StorageError> {
        drop(self.tx);
        self.done
            .await
            .map_err(|e| StorageError::Backend(format!("hashing thread: {e}")))
    }
}

/// Streams `range` of a local file: a task reads it ahead of the consumer in
/// [`LOCAL_READ_CHUNK`]s, each read one `spawn_blocking` call of plain `std::fs` I/O into a
/// fresh buffer that becomes the chunk without a copy, and hands the chunks over through a
/// channel of [`LOCAL_READ_AHEAD`] places. A chunk is read only once there is a place for it,
/// so a download holds at most `LOCAL_READ_AHEAD` chunks ahead of the one being sent, whatever
/// the file size, and no thread waits on a slow client. When the stream is dropped (the
/// client went away) the reader stops before its next read.
fn local_read_stream(
    file: std::fs::File,
    range: Range<u64>,
    stats: Arc<LocalReads>,
) -> BoxStream<'static, Result<Bytes, StorageError>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(LOCAL_READ_AHEAD);
    stats.active.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(read_ahead(file, range, tx, stats));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

async fn read_ahead(
    file: std::fs::File,
    range: Range<u64>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, StorageError>>,
    stats: Arc<LocalReads>,
) {
    struct Active(Arc<LocalReads>);
    impl Drop for Active {
        fn drop(&mut self) {
            self.0.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let stats = Active(stats);
    let mut file = Some(file);
    let mut pos = range.start;
    while pos < range.end {
        // Err: the receiver is gone.
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        let Some(f) = file.take() else { return };
        let len = (range.end - pos).min(LOCAL_READ_CHUNK as u64);
        let seek = (pos == range.start).then_some(pos);
        let read = tokio::task::spawn_blocking(move || {
            let res = read_chunk(&f, seek, len);
            (f, res)
        })
        .await;
        let chunk = match read {
            Ok((f, Ok(chunk))) => {
                file = Some(f);
                chunk
            }
            Ok((_, Err(e))) => {
                permit.send(Err(StorageError::Backend(format!("read: {e}"))));
                return;
            }
            Err(e) => {
                permit.send(Err(StorageError::Backend(format!("read task: {e}"))));
                return;
            }
        };
        stats.0.bytes.fetch_add(len, Ordering::Relaxed);
        pos += len;
        permit.send(Ok(chunk));
    }
}

/// Reads exactly `len` bytes at the file's position (after seeking to `seek`, if given).
fn read_chunk(mut file: &std::fs::File, seek: Option<u64>, len: u64) -> std::io::Result<Bytes> {
    use std::io::{Read, Seek};
    if let Some(pos) = seek {
        file.seek(std::io::SeekFrom::Start(pos))?;
    }
    // read_to_end fills the spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file ended before the requested range",
        ));
    }
    Ok(Bytes::from(buf))
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
