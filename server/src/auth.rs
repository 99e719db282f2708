//! Who is calling the vendor API: the `admin` user (HTTP Basic) or an API key (`Bearer` or
//! `x-api-key`) with permissions. Passwords are PBKDF2-hashed; API keys are stored as SHA-256.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Mutex;

use aws_lc_rs::pbkdf2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::Digest;

use crate::entities::{admin_user, api_key};
use crate::error::ApiError;
use crate::state::AppState;

pub const ADMIN_USER: &str = "admin";
const PBKDF2_ITERATIONS: u32 = 210_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read the catalog, licenses and statistics.
    Read,
    /// Create and change distributions, releases and files.
    Publish,
    /// Create and change licenses.
    Licenses,
    /// Everything, including API keys.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::Read,
        Permission::Publish,
        Permission::Licenses,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Publish => "publish",
            Permission::Licenses => "licenses",
            Permission::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Stored as a comma-separated list.
    pub fn parse_list(s: &str) -> Vec<Permission> {
        s.split(',')
            .filter_map(|p| Permission::parse(p.trim()))
            .collect()
    }

    pub fn join(list: &[Permission]) -> String {
        list.iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An authenticated caller of the vendor API.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    ApiKey {
        id: i32,
        permissions: Vec<Permission>,
    },
}

impl Caller {
    /// `admin` implies everything; `publish` and `licenses` imply `read`.
    pub fn has(&self, wanted: Permission) -> bool {
        match self {
            Caller::Admin => true,
            Caller::ApiKey { permissions, .. } => permissions.iter().any(|&p| {
                p == wanted
                    || p == Permission::Admin
                    || (wanted == Permission::Read
                        && matches!(p, Permission::Publish | Permission::Licenses))
            }),
        }
    }

    pub fn require(&self, wanted: Permission) -> Result<(), ApiError> {
        if self.has(wanted) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the {:?} permission",
                wanted.as_str()
            )))
        }
    }
}

/// Remembers passwords that verified, so Basic auth does not pay PBKDF2 on every request.
#[derive(Default)]
pub struct AuthCache {
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        if let Some(key) = header("x-api-key") {
            return api_key_caller(&state.db, key).await;
        }
        let Some(auth) = header("authorization") else {
            return Err(ApiError::unauthorized());
        };
        if let Some(key) = strip_prefix_ci(auth, "bearer ") {
            return api_key_caller(&state.db, key.trim()).await;
        }
        if let Some(encoded) = strip_prefix_ci(auth, "basic ") {
            let decoded = B64
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(ApiError::unauthorized)?;
            let (user, password) = decoded.split_once(':').ok_or_else(ApiError::unauthorized)?;
            if user == ADMIN_USER && verify_admin(state, password).await? {
                return Ok(Caller::Admin);
            }
            return Err(ApiError::unauthorized());
        }
        Err(ApiError::unauthorized())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

async fn verify_admin(state: &AppState, password: &str) -> Result<bool, ApiError> {
    let fingerprint: [u8; 32] = sha2::Sha256::digest(password.as_bytes()).into();
    if state
        .auth
        .verified
        .lock()
        .expect("auth cache poisoned")
        .contains(&fingerprint)
    {
        return Ok(true);
    }
    let Some(admin) = admin_user::Entity::find()
        .filter(admin_user::Column::Username.eq(ADMIN_USER))
        .one(&state.db)
        .await?
    else {
        return Ok(false);
    };
    let hash = admin.password_hash.clone();
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(ApiError::internal)?;
    if ok {
        state
            .auth
            .verified
            .lock()
            .expect("auth cache poisoned")
            .insert(fingerprint);
    }
    Ok(ok)
}

async fn api_key_caller(db: &DatabaseConnection, key: &str) -> Result<Caller, ApiError> {
    let row = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash_api_key(key)))
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "unknown or revoked API key",
            )
        })?;
    Ok(Caller::ApiKey {
        id: row.id,
        permissions: Permission::parse_list(&row.permissions),
    })
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// A new API key: `vypk_` + 40 random alphanumerics. Returned once, stored hashed.
pub fn generate_api_key() -> String {
    format!("vypk_{}", random_alphanumeric(40))
}

pub fn random_alphanumeric(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// `pbkdf2-sha256$ITER$SALT$HASH` (base64).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero"),
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(out)
    )
}

pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(iter), Ok(salt), Ok(hash)) = (
        iter.parse::<u32>().ok().and_then(NonZeroU32::new),
        B64.decode(salt),
        B64.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iter,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("s3cret");
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cret "));
        assert!(!verify_password("garbage", "s3cret"));
    }

    #[test]
    fn permissions_imply() {
        let publisher = Caller::ApiKey {
            id: 1,
            permissions: vec![Permission::Publish],
        };
        assert!(publisher.has(Permission::Read));
        assert!(publisher.has(Permission::Publish));
        assert!(!publisher.has(Permission::Licenses));
        assert!(!publisher.has(Permission::Admin));
        let reader = Caller::ApiKey {
            id: 2,
            permissions: vec![Permission::Read],
        };
        assert!(!reader.has(Permission::Publish));
        assert!(Caller::Admin.has(Permission::Admin));
        assert_eq!(
            Permission::parse_list("read, publish,bogus"),
            vec![Permission::Read, Permission::Publish]
        );
    }
}
