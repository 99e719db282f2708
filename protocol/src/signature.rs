//! Verification of `Licence-Signature` (SPEC §4.7): RSA PKCS#1 v1.5 SHA-256 over the bytes of
//! the request's `Licence-QueryID` followed by the exact response body.

use base64::Engine;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the public key is not an RSA public key in PEM (SPKI) form: {0}")]
    BadKey(&'static str),
    #[error("the answer carries no Licence-Signature header")]
    Missing,
    #[error("Licence-Signature is not valid base64")]
    NotBase64,
    #[error("the answer's signature does not match the pinned public key")]
    Mismatch,
}

/// A pinned RSA public key, parsed once.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// PKCS#1 `RSAPublicKey` DER, which is what ring verifies with.
    rsa_der: Vec<u8>,
}

impl PublicKey {
    /// Reads a `-----BEGIN PUBLIC KEY-----` (SPKI) PEM, as `GET /releases/v1/signing-key` serves.
    pub fn from_pem(pem: &str) -> Result<PublicKey, SignatureError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err(SignatureError::BadKey("no BEGIN PUBLIC KEY block"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| SignatureError::BadKey("PEM body is not base64"))?;
        PublicKey::from_spki_der(&der)
    }

    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, SignatureError> {
        let bad = SignatureError::BadKey("malformed SubjectPublicKeyInfo");
        let (tag, spki, _) = der_item(der).ok_or(bad.clone())?;
        if tag != 0x30 {
            return Err(bad);
        }
        let (tag, algorithm, rest) = der_item(spki).ok_or(bad.clone())?;
        // rsaEncryption OID 1.2.840.113549.1.1.1
        const RSA_OID: &[u8] = &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        ];
        if tag != 0x30 || !algorithm.starts_with(RSA_OID) {
            return Err(SignatureError::BadKey("not an RSA key"));
        }
        let (tag, bits, _) = der_item(rest).ok_or(bad.clone())?;
        if tag != 0x03 || bits.first() != Some(&0) {
            return Err(bad);
        }
        Ok(PublicKey {
            rsa_der: bits[1..].to_vec(),
        })
    }

    /// Checks `signature_b64` over `query_id || body`.
    pub fn verify(
        &self,
        query_id: &[u8],
        body: &[u8],
        signature_b64: &str,
    ) -> Result<(), SignatureError> {
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| SignatureError::NotBase64)?;
        let mut message = Vec::with_capacity(query_id.len() + body.len());
        message.extend_from_slice(query_id);
        message.extend_from_slice(body);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.rsa_der,
        )
        .verify(&message, &signature)
        .map_err(|_| SignatureError::Mismatch)
    }
}

/// The keys a client pins: an answer is good when any of them verifies it, so a vendor can
/// introduce a new signing key before retiring the old one (issue 10, item 8).
#[derive(Debug, Clone)]
pub struct PinnedKeys(Vec<PublicKey>);

impl PinnedKeys {
    /// Every `-----BEGIN PUBLIC KEY-----` block of `text`; at least one, and every one usable.
    pub fn from_pem_bundle(text: &str) -> Result<PinnedKeys, SignatureError> {
        let mut keys = Vec::new();
        let mut block: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if line == "-----BEGIN PUBLIC KEY-----" {
                block = Some(format!("{line}\n"));
            } else if let Some(current) = block.as_mut() {
                current.push_str(line);
                current.push('\n');
                if line.starts_with("-----END") {
                    keys.push(PublicKey::from_pem(current)?);
                    block = None;
                }
            }
        }
        if block.is_some() {
            return Err(SignatureError::BadKey(
                "a BEGIN PUBLIC KEY block has no END line",
            ));
        }
        if keys.is_empty() {
            return Err(SignatureError::BadKey("no BEGIN PUBLIC KEY block"));
        }
        Ok(PinnedKeys(keys))
    }

    /// Adds the keys of `other`.
    pub fn extend(&mut self, other: PinnedKeys) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when any pinned key verifies the answer.
    pub fn verify_response(
        &self,
        query_id: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        let mut last = SignatureError::Mismatch;
        for key in &self.0 {
            match key.verify(query_id.as_bytes(), body, signature) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// One-call form: `signature` is the header value, if any.
pub fn verify_response(
    key: &PublicKey,
    query_id: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    key.verify(
        query_id.as_bytes(),
        body,
        signature.ok_or(SignatureError::Missing)?,
    )
}

/// Splits one DER item off `input`: (tag, contents, rest).
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_keys() {
        assert!(PublicKey::from_pem("hello").is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der_item(&[0x30, 0x01, 0xaa, 0xbb]),
            Some((0x30, &[0xaa][..], &[0xbb][..]))
        );
        assert_eq!(
            der_item(&[0x30, 0x81, 0x01, 0xaa]),
            Some((0x30, &[0xaa][..], &[][..]))
        );
        assert_eq!(der_item(&[0x30, 0x05, 0xaa]), None);
    }
}
