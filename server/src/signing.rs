//! Signed answers (SPEC §4.7): the RSA-2048 key pair and the middleware that signs every JSON
//! answer under `/releases/` and `/api/`. Where the key pair comes from (the database, shared by
//! every instance, or the operator's file) is `identity`'s business (SPEC §8, issue 8).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::Digest;
use vypusk_protocol::{HEADER_QUERY_ID, HEADER_SERVER_VERSION, HEADER_SIGNATURE};

pub const PRIVATE_KEY_FILE: &str = "signing-key.pem";
pub const PUBLIC_KEY_FILE: &str = "signing-key.pub.pem";
/// JSON answers are small; anything larger is not buffered for signing.
const MAX_SIGNED_BODY: usize = 16 << 20;
const CACHE_ENTRIES: usize = 4096;

pub struct Signer {
    key: KeyPair,
    public_pem: String,
    /// sha256(body) → signature, for answers signed without a QueryID.
    cache: Mutex<HashMap<[u8; 32], Arc<str>>>,
    /// Signatures computed on request threads at once, one per core; more wait on the
    /// blocking pool (see [`Signer::sign_answer`]).
    signing_slots: tokio::sync::Semaphore,
}

impl Signer {
    /// A new RSA-2048 key pair.
    pub fn generate() -> anyhow::Result<Signer> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        Signer::from_key(key)
    }

    /// A private key as PEM: PKCS#8 (`PRIVATE KEY`, what vypusk writes and `openssl genpkey`
    /// makes) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_private_pem(text: &str) -> anyhow::Result<Signer> {
        let pem = pem::parse(text).map_err(|_| anyhow::anyhow!("not a PEM private key"))?;
        let key = match pem.tag() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(pem.contents()),
            "RSA PRIVATE KEY" => KeyPair::from_der(pem.contents()),
            other => anyhow::bail!("a PEM {other:?} is not an RSA private key"),
        }
        .map_err(|e| anyhow::anyhow!("not a usable RSA private key: {e}"))?;
        Signer::from_key(key)
    }

    fn from_key(key: KeyPair) -> anyhow::Result<Signer> {
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| anyhow::anyhow!("cannot encode the public key"))?;
        let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Signer {
            key,
            public_pem,
            cache: Mutex::new(HashMap::new()),
            signing_slots: tokio::sync::Semaphore::new(cores),
        })
    }

    /// The private key as PKCS#8 PEM, for keeping it in the database.
    pub fn private_key_pem(&self) -> anyhow::Result<String> {
        let der = self
            .key
            .as_der()
            .map_err(|_| anyhow::anyhow!("cannot encode the private key"))?;
        Ok(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            der.as_ref().to_vec(),
        )))
    }

    /// Writes the public key to `data_dir/signing-key.pub.pem`, where the demo and operators
    /// pick it up for clients to pin.
    pub fn write_public_key(&self, data_dir: &Path) -> std::io::Result<()> {
        std::fs::write(data_dir.join(PUBLIC_KEY_FILE), &self.public_pem)
    }

    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// Base64 signature over `query_id || body`.
    pub fn sign(&self, query_id: &[u8], body: &[u8]) -> String {
        let mut message = Vec::with_capacity(query_id.len() + body.len());
        message.extend_from_slice(query_id);
        message.extend_from_slice(body);
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                &message,
                &mut signature,
            )
            .expect("RSA signing with a valid key cannot fail");
        base64::engine::general_purpose::STANDARD.encode(signature)
    }

    /// [`Signer::sign`] for an answer. RSA-2048 takes about a quarter of a millisecond, as
    /// long as a few answers take to send: it runs on the request's own thread while fewer
    /// signatures than cores are under way (a hand-over to another thread costs more than it
    /// saves, bench/RESULTS.md), and on the blocking pool beyond that, so a burst of
    /// fresh-QueryID checks queues there instead of on the threads that drive connections.
    pub async fn sign_answer(
        self: &Arc<Self>,
        query_id: Option<HeaderValue>,
        body: axum::body::Bytes,
    ) -> Result<Arc<str>, tokio::task::JoinError> {
        let sign = move |signer: &Signer| -> Arc<str> {
            let query_id = query_id.as_ref().map_or(&b""[..], HeaderValue::as_bytes);
            signer.sign(query_id, &body).into()
        };
        if let Ok(_slot) = self.signing_slots.try_acquire() {
            return Ok(sign(self));
        }
        let signer = self.clone();
        tokio::task::spawn_blocking(move || sign(&signer)).await
    }

    /// Without a QueryID equal bodies get equal signatures, so each is computed once.
    pub fn sign_cached(&self, body: &[u8]) -> Arc<str> {
        let digest: [u8; 32] = sha2::Sha256::digest(body).into();
        if let Some(hit) = self
            .cache
            .lock()
            .expect("signature cache poisoned")
            .get(&digest)
        {
            return hit.clone();
        }
        let signature: Arc<str> = self.sign(b"", body).into();
        let mut cache = self.cache.lock().expect("signature cache poisoned");
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(digest, signature.clone());
        signature
    }
}

/// The content type of every JSON answer under `/releases/` and `/api/`.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Signs JSON answers; passes every other answer (file downloads) through untouched.
pub async fn sign_responses(
    State(signer): State<Arc<Signer>>,
    request: Request,
    next: Next,
) -> Response {
    let query_id = request.headers().get(HEADER_QUERY_ID).cloned();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(
        HEADER_SERVER_VERSION,
        HeaderValue::from_static(crate::VERSION),
    );
    // Check answers are signed by their handler on the final bytes (`routes::client`), with
    // no second buffer.
    if !is_json || parts.headers.contains_key(HEADER_SIGNATURE) {
        return Response::from_parts(parts, body);
    }
    // 1C's `ПолучитьТелоКакСтроку()` without an encoding reads the charset from here
    // (SPEC §4.1): without it every Cyrillic name and changelog is garbled.
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    let bytes = match to_bytes(body, MAX_SIGNED_BODY).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot buffer a JSON answer for signing");
            return Response::from_parts(parts, Body::empty());
        }
    };
    let signature: Arc<str> = match &query_id {
        Some(q) if !q.is_empty() => signer.sign(q.as_bytes(), &bytes).into(),
        _ => signer.sign_cached(&bytes),
    };
    if let Ok(value) = HeaderValue::from_str(&signature) {
        parts.headers.insert(HEADER_SIGNATURE, value);
    }
    if let Some(q) = query_id {
        parts.headers.insert(HEADER_QUERY_ID, q);
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vypusk_protocol::signature::PublicKey;

    #[test]
    fn signatures_verify_with_the_published_key() {
        let signer = Signer::generate().unwrap();
        let public = PublicKey::from_pem(signer.public_key_pem()).unwrap();
        let sig = signer.sign(b"query-1", b"{\"a\":1}");
        public.verify(b"query-1", b"{\"a\":1}", &sig).unwrap();
        assert!(public.verify(b"query-2", b"{\"a\":1}", &sig).is_err());
        assert!(public.verify(b"query-1", b"{\"a\":2}", &sig).is_err());
        let cached = signer.sign_cached(b"body");
        public.verify(b"", b"body", &cached).unwrap();
        assert_eq!(signer.sign_cached(b"body"), cached);

        // The stored form gives back the same key.
        let again = Signer::from_private_pem(&signer.private_key_pem().unwrap()).unwrap();
        assert_eq!(again.public_key_pem(), signer.public_key_pem());
        assert!(Signer::from_private_pem(signer.public_key_pem()).is_err());
        assert!(Signer::from_private_pem("not pem").is_err());
    }
}
