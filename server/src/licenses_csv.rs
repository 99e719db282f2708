//! License CSV import (`POST /api/v1/licenses/import`, `vypusk license import`): the parser
//! lives in `vypusk-formats` (fuzzed alone); the server names it from here and adds what comes
//! before the parser: the request body (raw or `multipart/form-data`, [`CsvUpload`]) and the
//! text encoding ([`decode`]), so the API and the CLI take the same files.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};

use crate::error::ApiError;

pub use vypusk_formats::licenses_csv::*;

/// The text encoding a CSV was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// What Excel in a Russian locale writes for "CSV (разделители — точка с запятой)".
    Windows1251,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Windows1251 => "Windows-1251",
        }
    }
}

const SAVE_AS_UTF8: &str = "save it from Excel as \"CSV UTF-8 (comma delimited)\"";

/// The CSV's text: UTF-8 (a byte-order mark is dropped), or, when the bytes are not UTF-8,
/// Windows-1251 (CP1251, Excel's "CSV" in Russian locales). Bytes that are neither (UTF-16,
/// control characters, bytes CP1251 leaves undefined) are refused with a hint.
pub fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, Encoding), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((Cow::Borrowed(text), Encoding::Utf8));
    }
    if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
        return Err(format!(
            "the CSV is UTF-16 text (Excel's \"Unicode text\"); {SAVE_AS_UTF8}"
        ));
    }
    let text = encoding_rs::WINDOWS_1251
        .decode_without_bom_handling_and_without_replacement(bytes)
        .filter(|text| {
            !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
        })
        .ok_or_else(|| format!("the CSV is neither UTF-8 nor Windows-1251 text; {SAVE_AS_UTF8}"))?;
    Ok((Cow::Owned(text.into_owned()), Encoding::Windows1251))
}

/// Decodes and parses a whole file: the licenses and the encoding it was read in, or the one
/// message naming every bad line (or the encoding problem).
pub fn parse_bytes(bytes: &[u8]) -> Result<(Vec<LicenseData>, Encoding), String> {
    let (text, encoding) = decode(bytes)?;
    let licenses = parse(&text).map_err(|errors| error_message(&errors))?;
    Ok((licenses, encoding))
}

/// The body of `POST /api/v1/licenses/import`: the CSV itself (any content type but
/// multipart), or a `multipart/form-data` body with the CSV as its one file part (`curl -F
/// file=@licenses.csv`; the part named `file`, else the one part with a file name, else the
/// only part). Both are bounded by the route's `DefaultBodyLimit`; put it after the permission
/// check, so nothing is read for a caller without it.
pub struct CsvUpload(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for CsvUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !multipart {
            let body = Bytes::from_request(req, state).await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request(e.body_text())
                }
            })?;
            return Ok(CsvUpload(body));
        }
        let mut multipart = Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        // (name, has a file name, bytes) of every part.
        let mut parts: Vec<(Option<String>, bool, Bytes)> = Vec::new();
        loop {
            let field = multipart.next_field().await.map_err(multipart_error)?;
            let Some(field) = field else { break };
            let name = field.name().map(str::to_owned);
            let is_file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(multipart_error)?;
            parts.push((name, is_file, bytes));
        }
        let named_file = |p: &&(Option<String>, bool, Bytes)| p.0.as_deref() == Some("file");
        let chosen = if parts.iter().filter(named_file).count() == 1 {
            parts.iter().find(named_file)
        } else if parts.iter().filter(|p| p.1).count() == 1 {
            parts.iter().find(|p| p.1)
        } else if parts.len() == 1 {
            parts.first()
        } else {
            None
        };
        match chosen {
            Some((_, _, bytes)) => Ok(CsvUpload(bytes.clone())),
            None if parts.is_empty() => Err(ApiError::bad_request(
                "the multipart body has no parts; send the CSV as one file part: curl -F file=@licenses.csv",
            )),
            None => Err(ApiError::bad_request(format!(
                "the multipart body has {} parts; send the CSV as one file part (named \"file\"): curl -F file=@licenses.csv",
                parts.len()
            ))),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::too_large(format!(
        "CSV larger than {} bytes",
        crate::services::licenses::IMPORT_BODY_LIMIT
    ))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_bom_and_cp1251() {
        let (text, enc) = decode("\u{feff}key,customer".as_bytes()).unwrap();
        assert_eq!((text.as_ref(), enc), ("key,customer", Encoding::Utf8));
        // "ООО Ромашка" in CP1251.
        let cp1251 = b"key;customer\r\nABCD-1;\xce\xce\xce \xd0\xee\xec\xe0\xf8\xea\xe0\r\n";
        let (text, enc) = decode(cp1251).unwrap();
        assert_eq!(enc, Encoding::Windows1251);
        assert_eq!(text, "key;customer\r\nABCD-1;ООО Ромашка\r\n");
        let e = decode(b"\xff\xfek\x00e\x00y\x00").unwrap_err();
        assert!(e.contains("UTF-16") && e.contains("CSV UTF-8"), "{e}");
        // 0x98 is undefined in CP1251; NUL bytes are no text either.
        for bad in [&b"key\x98"[..], b"key\xe0\x00\x00"] {
            let e = decode(bad).unwrap_err();
            assert!(e.contains("CSV UTF-8"), "{e}");
        }
    }

    #[test]
    fn parse_bytes_names_bad_lines() {
        let good: &[u8] = b"key;product;feature;customer;active_until\n\
            ABCD-1;85;43;\xc8\xcf \xc8\xe2\xe0\xed\xee\xe2;31.12.2030\n";
        let bad = [good, b"bad key;85;43;;\n"].concat();
        let e = parse_bytes(&bad).unwrap_err();
        assert!(e.contains("line 3:") && !e.contains("line 2:"), "{e}");
        let (licenses, enc) = parse_bytes(good).unwrap();
        assert_eq!(enc, Encoding::Windows1251);
        assert_eq!(licenses[0].customer, "ИП Иванов");
    }
}
