//! The in-memory index the client protocol reads: published releases of every distribution
//! with their compatibility and files, and every license. The vendor API refreshes one
//! distribution (or one license) after each change, so the check path runs no SQL. Changes
//! made elsewhere (other instances, the CLI) arrive through `catalog_sync`; the catalog's
//! generation says up to which change it reflects the database.
//!
//! Distributions live in one immutable snapshot swapped whole (`arc-swap`): a check reads it
//! without a lock and never sees half a refresh. Licenses live in a compact index (by id and by
//! the SHA-256 of the key; the key is stored once) that a single-license change updates in place.

mod load;
mod model;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use sea_orm::{DatabaseConnection, DbErr};
use sha2::Digest;

pub use model::{Distribution, DistributionJson, File, FileJson, Parts, Release, ReleaseJson};

use crate::domain::licensing::LicenseView;

pub const STATUS_DRAFT: &str = "draft";
pub const STATUS_PUBLISHED: &str = "published";
pub const STATUS_YANKED: &str = "yanked";

/// One immutable view of every distribution.
#[derive(Default)]
pub struct Snapshot {
    by_id: HashMap<i32, Arc<Distribution>>,
    id_by_code: HashMap<Box<str>, i32>,
}

impl Snapshot {
    fn insert(&mut self, dist: Distribution) {
        self.id_by_code.insert(dist.code.clone(), dist.id);
        self.by_id.insert(dist.id, Arc::new(dist));
    }
}

#[derive(Default)]
struct LicenseIndex {
    by_id: HashMap<i32, Arc<LicenseView>>,
    /// The first half of sha256(key) → id: the key lookup of checks and
    /// `getModuleFile/{TYPE}/{version}/{hash}`. Half a digest keeps the table small; a hit is
    /// confirmed against the whole digest of the stored key.
    id_by_sha256: HashMap<[u8; 16], i32>,
}

impl LicenseIndex {
    fn insert(&mut self, view: LicenseView) {
        self.id_by_sha256
            .insert(half(&key_digest(&view.key)), view.id);
        self.by_id.insert(view.id, Arc::new(view));
    }

    /// Inserts `view`, dropping what the index held under its id or its key.
    fn replace(&mut self, view: LicenseView) {
        if let Some(old) = self.by_id.remove(&view.id) {
            self.id_by_sha256.remove(&half(&key_digest(&old.key)));
        }
        self.remove_key(&view.key);
        self.insert(view);
    }

    fn remove_key(&mut self, key: &str) {
        let half = half(&key_digest(key));
        if let Some(&id) = self.id_by_sha256.get(&half)
            && self.by_id.get(&id).is_some_and(|l| &*l.key == key)
        {
            self.id_by_sha256.remove(&half);
            self.by_id.remove(&id);
        }
    }

    /// The license whose key has this digest; `key`, when the caller has it, confirms the hit
    /// without hashing again.
    fn by_digest(&self, digest: &[u8; 32], key: Option<&str>) -> Option<Arc<LicenseView>> {
        let view = self.by_id.get(self.id_by_sha256.get(&half(digest))?)?;
        let same = match key {
            Some(key) => &*view.key == key,
            None => key_digest(&view.key) == *digest,
        };
        same.then(|| view.clone())
    }
}

fn key_digest(key: &str) -> [u8; 32] {
    sha2::Sha256::digest(key.as_bytes()).into()
}

fn half(digest: &[u8; 32]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Entries of the index, see [`Catalog::sizes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogSizes {
    pub distributions: usize,
    pub releases: usize,
    pub licenses: usize,
}

/// Cheap to clone; all clones see the same index.
#[derive(Clone, Default)]
pub struct Catalog {
    snapshot: Arc<ArcSwap<Snapshot>>,
    licenses: Arc<RwLock<LicenseIndex>>,
    /// Serializes refreshes so two writers never publish a stale snapshot over a newer one.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// The database's catalog generation this index reflects (see `catalog_sync`).
    generation: Arc<AtomicU64>,
}

impl Catalog {
    pub async fn load(db: &DatabaseConnection) -> Result<Catalog, DbErr> {
        let catalog = Catalog::default();
        // Read before loading: a change committed meanwhile is applied again by the next
        // catch-up, never missed.
        let generation = crate::catalog_sync::current_generation(db).await?;
        catalog.reload_all(db).await?;
        catalog.set_generation(generation);
        Ok(catalog)
    }

    /// The catalog generation (count of recorded changes) this index has caught up with.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Release);
    }

    /// Moves the generation forward only, so a slow catch-up never moves it back.
    pub(crate) fn advance_generation(&self, generation: u64) {
        self.generation.fetch_max(generation, Ordering::AcqRel);
    }

    pub fn distribution(&self, code: &str) -> Option<Arc<Distribution>> {
        let snap = self.snapshot.load();
        let id = snap.id_by_code.get(code)?;
        snap.by_id.get(id).cloned()
    }

    /// Every distribution of the snapshot, published or not.
    pub fn distributions(&self) -> Vec<Arc<Distribution>> {
        self.snapshot.load().by_id.values().cloned().collect()
    }

    pub fn distribution_by_id(&self, id: i32) -> Option<Arc<Distribution>> {
        self.snapshot.load().by_id.get(&id).cloned()
    }

    /// The distribution holding published release `release_id` (published or not, the
    /// distribution). Looks at every release: for the vendor's bundle route and CLI, never on
    /// the check path.
    pub fn distribution_of_release(&self, release_id: i32) -> Option<Arc<Distribution>> {
        self.snapshot
            .load()
            .by_id
            .values()
            .find(|d| d.release(release_id).is_some())
            .cloned()
    }

    pub fn license(&self, key: &str) -> Option<Arc<LicenseView>> {
        self.license_by_digest(&key_digest(key), Some(key))
    }

    pub fn license_by_id(&self, id: i32) -> Option<Arc<LicenseView>> {
        self.licenses
            .read()
            .expect("license index lock poisoned")
            .by_id
            .get(&id)
            .cloned()
    }

    /// By the lowercase or uppercase hex SHA-256 of the key.
    pub fn license_by_sha256(&self, hash: &str) -> Option<Arc<LicenseView>> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hash, &mut digest).ok()?;
        self.license_by_digest(&digest, None)
    }

    fn license_by_digest(&self, digest: &[u8; 32], key: Option<&str>) -> Option<Arc<LicenseView>> {
        self.licenses
            .read()
            .expect("license index lock poisoned")
            .by_digest(digest, key)
    }

    /// How much the index holds, for `/metrics` (issue 8, item 4). Counts published releases
    /// of every distribution.
    pub fn sizes(&self) -> CatalogSizes {
        let snap = self.snapshot.load();
        CatalogSizes {
            distributions: snap.by_id.len(),
            releases: snap.by_id.values().map(|d| d.releases.len()).sum(),
            licenses: self
                .licenses
                .read()
                .expect("license index lock poisoned")
                .by_id
                .len(),
        }
    }

    pub async fn reload_all(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let mut snap = Snapshot::default();
        for dist in load::distributions(db, None).await? {
            snap.insert(dist);
        }
        self.snapshot.store(Arc::new(snap));
        self.load_licenses(db).await
    }

    /// Re-reads every license (after a bulk import), leaving the catalog as it is.
    pub async fn reload_licenses(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        self.load_licenses(db).await
    }

    async fn load_licenses(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let mut index = LicenseIndex::default();
        load::licenses(db, None, |page| {
            for view in page {
                index.insert(view);
            }
        })
        .await?;
        index.by_id.shrink_to_fit();
        index.id_by_sha256.shrink_to_fit();
        *self.licenses.write().expect("license index lock poisoned") = index;
        Ok(())
    }

    /// Re-reads one distribution (or drops it when it no longer exists).
    pub async fn refresh_distribution(
        &self,
        db: &DatabaseConnection,
        id: i32,
    ) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let fresh = load::distributions(db, Some(id)).await?;
        let current = self.snapshot.load_full();
        let mut snap = Snapshot {
            by_id: current.by_id.clone(),
            id_by_code: current.id_by_code.clone(),
        };
        if let Some(old) = snap.by_id.remove(&id) {
            snap.id_by_code.remove(&old.code);
        }
        for dist in fresh {
            snap.insert(dist);
        }
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// Re-reads the licenses changed at or after `since` (whole seconds: a bulk import),
    /// page by page, leaving the others as they are.
    pub async fn refresh_licenses_since(
        &self,
        db: &DatabaseConnection,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let since = chrono::DateTime::from_timestamp(since.timestamp(), 0).unwrap_or(since);
        load::licenses(db, Some(since), |page| {
            let mut index = self.licenses.write().expect("license index lock poisoned");
            for view in page {
                index.replace(view);
            }
        })
        .await
    }

    /// Re-reads one license by key (or drops it when it no longer exists).
    pub async fn refresh_license(&self, db: &DatabaseConnection, key: &str) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let fresh = load::license(db, key).await?;
        let mut index = self.licenses.write().expect("license index lock poisoned");
        index.remove_key(key);
        if let Some(view) = fresh {
            index.replace(view);
        }
        Ok(())
    }
}
