//! One identity for all instances (issue 8, item 2; SPEC §8): every instance on one database
//! signs answers with the same key pair, issues download links with the same token secret and
//! hashes client addresses for the statistics with the same salt, so a link issued by one
//! downloads from any other, one pinned public key verifies them all, and an installation seen
//! by two instances is one installation.
//!
//! The three live in the `cluster_secrets` table. Whichever instance starts first inserts them
//! (insert-if-absent) and every instance then reads back what won, so instances starting
//! together agree without further coordination. What an instance offers is, in this order:
//! - the operator's: `signing_key_file`, `token_secret_file` / `token_secret`;
//! - a single-instance data directory's files from before (`signing-key.pem`, `token-secret`,
//!   `stats-salt`): kept, not regenerated, so pinned keys and issued links stay valid;
//! - a freshly generated one.
//!
//! An operator's key or secret, or a data directory's signing key or token secret, that differs
//! from the one already shared is refused with a message saying why: the instance would
//! otherwise sign with a key its clients do not pin, or issue links the others reject. A data
//! directory's statistics salt that differs only splits installation counts, so the shared one
//! is used with a warning.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::config::Settings;
use crate::signing::{self, Signer};

/// The files single-instance data directories held before the secrets moved into the database.
pub const LEGACY_TOKEN_SECRET_FILE: &str = "token-secret";
pub const LEGACY_STATS_SALT_FILE: &str = crate::stats::capture::SALT_FILE;

const SIGNING_KEY: &str = "signing_key";
const TOKEN_SECRET: &str = "token_secret";
const STATS_SALT: &str = "stats_salt";
/// Shorter token secrets are refused: HMAC-SHA256 wants at least its output size.
const MIN_SECRET_BYTES: usize = 32;

/// What every instance on the database shares.
pub struct Identity {
    pub signer: Signer,
    pub token_secret: Vec<u8>,
    pub stats_salt: Vec<u8>,
}

/// Where an offered value came from, which decides what a mismatch means.
enum Origin {
    /// The operator's configuration (a file or the environment), named.
    Operator(String),
    /// A file of the data directory from before the database kept it.
    DataDir(PathBuf),
    Generated,
}

struct Offer {
    /// The stored form: PKCS#8 PEM for the key, base64 for the secrets.
    value: String,
    origin: Origin,
}

/// Reads (or, on the first start on this database, stores) the shared identity, and writes
/// `signing-key.pub.pem` into the data directory.
pub async fn load(db: &DatabaseConnection, settings: &Settings) -> anyhow::Result<Identity> {
    let data_dir = &settings.data_dir;

    let key_offer = signing_key_offer(settings)?;
    let stored = share(db, SIGNING_KEY, &key_offer).await?;
    let signer = Signer::from_private_pem(&stored)
        .context("the signing key stored in the database (cluster_secrets) is not usable")?;
    let offered = Signer::from_private_pem(&key_offer.value)?;
    if offered.public_key_pem() != signer.public_key_pem() {
        refuse_or_accept("signing key", &key_offer.origin, true)?;
    }
    signer
        .write_public_key(data_dir)
        .with_context(|| format!("cannot write the public key into {}", data_dir.display()))?;

    let secret_offer = token_secret_offer(settings)?;
    let token_secret = decode(&share(db, TOKEN_SECRET, &secret_offer).await?, TOKEN_SECRET)?;
    if B64.encode(&token_secret) != secret_offer.value {
        refuse_or_accept("download-token secret", &secret_offer.origin, true)?;
    }

    let salt_offer = bytes_offer(&data_dir.join(LEGACY_STATS_SALT_FILE))?;
    let stats_salt = decode(&share(db, STATS_SALT, &salt_offer).await?, STATS_SALT)?;
    if B64.encode(&stats_salt) != salt_offer.value {
        refuse_or_accept("statistics salt", &salt_offer.origin, false)?;
    }

    Ok(Identity {
        signer,
        token_secret,
        stats_salt,
    })
}

/// Inserts `offer` unless the database has a value already, and returns the stored one.
async fn share(db: &DatabaseConnection, name: &str, offer: &Offer) -> anyhow::Result<String> {
    let insert = Query::insert()
        .into_table("cluster_secrets")
        .columns(["name", "value", "created_at"])
        .values_panic([
            name.into(),
            offer.value.clone().into(),
            chrono::Utc::now().into(),
        ])
        .on_conflict(OnConflict::column("name").do_nothing().to_owned())
        .to_owned();
    db.execute(&insert)
        .await
        .with_context(|| format!("cannot store the shared {name}"))?;
    let select = Query::select()
        .column("value")
        .from("cluster_secrets")
        .and_where(Expr::col("name").eq(name))
        .to_owned();
    let row = db
        .query_one(&select)
        .await
        .with_context(|| format!("cannot read the shared {name}"))?
        .with_context(|| format!("the shared {name} vanished from the database"))?;
    Ok(row.try_get::<String>("", "value")?)
}

/// What a difference between the offered and the shared value means.
fn refuse_or_accept(what: &str, origin: &Origin, refuse_data_dir: bool) -> anyhow::Result<()> {
    match origin {
        Origin::Generated => Ok(()),
        Origin::Operator(source) => anyhow::bail!(
            "the {what} from {source} differs from the one the instances on this database \
             share; every instance must use the same one: configure the shared one everywhere, \
             or remove {source} to use the database's"
        ),
        Origin::DataDir(path) if refuse_data_dir => anyhow::bail!(
            "{} holds a {what} that differs from the one the instances on this database share; \
             this instance would not be interchangeable with the others (clients pin one \
             signing key, links of one instance must open on all), so it does not start. Move \
             {} out of the data directory to use the shared {what}",
            path.display(),
            path.display()
        ),
        Origin::DataDir(path) => {
            tracing::warn!(
                file = %path.display(),
                "the data directory's {what} differs from the shared one; using the shared one"
            );
            Ok(())
        }
    }
}

fn signing_key_offer(settings: &Settings) -> anyhow::Result<Offer> {
    let (text, origin) = if let Some(path) = &settings.signing_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read signing_key_file {}", path.display()))?;
        (
            text,
            Origin::Operator(format!("signing_key_file {}", path.display())),
        )
    } else {
        let legacy = settings.data_dir.join(signing::PRIVATE_KEY_FILE);
        match read_if_present(&legacy)? {
            Some(bytes) => (
                String::from_utf8(bytes)
                    .map_err(|_| anyhow::anyhow!("{} is not a PEM file", legacy.display()))?,
                Origin::DataDir(legacy),
            ),
            None => (Signer::generate()?.private_key_pem()?, Origin::Generated),
        }
    };
    let where_from = match &origin {
        Origin::Operator(source) => source.clone(),
        Origin::DataDir(path) => path.display().to_string(),
        Origin::Generated => "the generated key".to_owned(),
    };
    // Stored as PKCS#8 whatever the operator's file holds, so every instance compares equals.
    let value = Signer::from_private_pem(&text)
        .with_context(|| format!("{where_from}: not a usable signing key"))?
        .private_key_pem()?;
    Ok(Offer { value, origin })
}

fn token_secret_offer(settings: &Settings) -> anyhow::Result<Offer> {
    if let Some(secret) = &settings.token_secret {
        let bytes = secret.0.as_bytes();
        ensure_long_enough(bytes, "VYPUSK_TOKEN_SECRET (token_secret)")?;
        return Ok(Offer {
            value: B64.encode(bytes),
            origin: Origin::Operator("VYPUSK_TOKEN_SECRET (token_secret)".to_owned()),
        });
    }
    if let Some(path) = &settings.token_secret_file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read token_secret_file {}", path.display()))?;
        let source = format!("token_secret_file {}", path.display());
        ensure_long_enough(&bytes, &source)?;
        return Ok(Offer {
            value: B64.encode(&bytes),
            origin: Origin::Operator(source),
        });
    }
    bytes_offer(&settings.data_dir.join(LEGACY_TOKEN_SECRET_FILE))
}

/// The data directory's file when it has one, else fresh random bytes.
fn bytes_offer(legacy: &Path) -> anyhow::Result<Offer> {
    Ok(match read_if_present(legacy)?.filter(|b| !b.is_empty()) {
        Some(bytes) => Offer {
            value: B64.encode(bytes),
            origin: Origin::DataDir(legacy.to_path_buf()),
        },
        None => {
            let mut bytes = vec![0u8; MIN_SECRET_BYTES];
            rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
            Offer {
                value: B64.encode(bytes),
                origin: Origin::Generated,
            }
        }
    })
}

fn ensure_long_enough(bytes: &[u8], source: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        bytes.len() >= MIN_SECRET_BYTES,
        "{source} has {} bytes; a token secret needs at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
        bytes.len()
    );
    Ok(())
}

fn read_if_present(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn decode(stored: &str, name: &str) -> anyhow::Result<Vec<u8>> {
    B64.decode(stored.trim()).with_context(|| {
        format!("the shared {name} in the database (cluster_secrets) is not base64")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(dir: &Path) -> DatabaseConnection {
        let db = crate::db::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.join("shared.db").display()
        ))
        .await
        .unwrap();
        crate::db::migrate(&db).await.unwrap();
        db
    }

    fn settings(data_dir: &Path) -> Settings {
        std::fs::create_dir_all(data_dir).unwrap();
        Settings {
            data_dir: data_dir.to_path_buf(),
            ..Settings::default()
        }
    }

    #[tokio::test]
    async fn instances_share_what_the_first_stored() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(dir.path()).await;
        let a = load(&db, &settings(&dir.path().join("a"))).await.unwrap();
        let b = load(&db, &settings(&dir.path().join("b"))).await.unwrap();
        assert_eq!(a.signer.public_key_pem(), b.signer.public_key_pem());
        assert_eq!(a.token_secret, b.token_secret);
        assert_eq!(a.stats_salt, b.stats_salt);
        assert_eq!(a.token_secret.len(), MIN_SECRET_BYTES);
        let written = std::fs::read_to_string(dir.path().join("b/signing-key.pub.pem")).unwrap();
        assert_eq!(written, a.signer.public_key_pem());
    }

    #[tokio::test]
    async fn a_data_dir_from_before_is_migrated_and_a_different_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        let key = Signer::generate().unwrap();
        std::fs::write(
            old.join(signing::PRIVATE_KEY_FILE),
            key.private_key_pem().unwrap(),
        )
        .unwrap();
        std::fs::write(old.join(LEGACY_TOKEN_SECRET_FILE), [7u8; 32]).unwrap();
        let db = sqlite(dir.path()).await;
        let migrated = load(&db, &settings(&old)).await.unwrap();
        assert_eq!(migrated.signer.public_key_pem(), key.public_key_pem());
        assert_eq!(migrated.token_secret, vec![7u8; 32]);

        // A second data directory with a key of its own is refused, naming the file.
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let foreign = Signer::generate().unwrap();
        std::fs::write(
            other.join(signing::PRIVATE_KEY_FILE),
            foreign.private_key_pem().unwrap(),
        )
        .unwrap();
        let err = load(&db, &settings(&other))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("signing-key.pem"), "{err}");
        assert!(err.contains("differs from the one the instances"), "{err}");

        // The operator's secret must equal the shared one, and be long enough.
        let mut s = settings(&dir.path().join("c"));
        s.token_secret = Some(crate::config::SecretText("x".repeat(40)));
        let err = load(&db, &s).await.err().unwrap().to_string();
        assert!(err.contains("VYPUSK_TOKEN_SECRET"), "{err}");
        s.token_secret = Some(crate::config::SecretText("short".into()));
        assert!(load(&db, &s).await.is_err());
    }

    #[tokio::test]
    async fn the_operators_key_is_stored_when_the_database_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(dir.path()).await;
        let key = Signer::generate().unwrap();
        let file = dir.path().join("operator.pem");
        std::fs::write(&file, key.private_key_pem().unwrap()).unwrap();
        let mut s = settings(&dir.path().join("a"));
        s.signing_key_file = Some(file);
        s.token_secret = Some(crate::config::SecretText("s".repeat(32)));
        let a = load(&db, &s).await.unwrap();
        assert_eq!(a.signer.public_key_pem(), key.public_key_pem());
        assert_eq!(a.token_secret, b"s".repeat(32));
        // An instance without configuration gets the same.
        let b = load(&db, &settings(&dir.path().join("b"))).await.unwrap();
        assert_eq!(b.signer.public_key_pem(), key.public_key_pem());
        assert_eq!(b.token_secret, a.token_secret);
    }
}
