//! Downloads: `GET|HEAD /releases/v1/files/{token}/{name}` (SPEC §4.6), and the streaming
//! file answer shared with `getModuleFile`: ranges, validators, and bounded memory whatever
//! the file size.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use sha2::Digest;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vypusk_storage::BlobKey;

use crate::catalog::{Distribution, File, Release};
use crate::client_addr::ClientAddr;
use crate::domain::licensing;
use crate::error::ClientError;
use crate::recorder::Recorder;
use crate::state::AppState;
use crate::stats::capture::DownloadEvent;

pub use vypusk_formats::range::{RangeRequest, parse_range};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download))
}

/// `{token}` and `{name}` of a download link.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct LinkParams {
    /// The signed token from an answer's `url` or `download_link`.
    token: String,
    /// The file's name.
    #[param(example = "PT40_UT_CRM3_4.0.4.12.zip")]
    name: String,
}

/// The request headers of a download: resumption and revalidation.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct RangeHeaders {
    /// One byte range, `bytes=START-[END]` or `bytes=-SUFFIX`.
    #[param(rename = "Range", example = "bytes=0-1048575")]
    range: Option<String>,
    /// The file's ETag (its SHA-256 in quotes): 304 when it is unchanged.
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
    /// With `Range`: the range only if the file is still this ETag.
    #[param(rename = "If-Range")]
    if_range: Option<String>,
}

/// What to record when a counted download starts.
pub struct CountedDownload {
    /// Equal for every request through one link: its requests share one raw row.
    pub dedup_key: String,
    pub license_key: Option<String>,
    pub conf: String,
    pub conf_version: String,
    pub installed_version: String,
}

pub fn dedup_key(parts: &[&[u8]]) -> String {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The answers every file download shares, for the document (403 differs per route).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum FileAnswers {
    #[response(
        status = 200,
        description = "The file",
        content_type = "application/octet-stream"
    )]
    Whole(crate::openapi::Binary),
    #[response(
        status = 206,
        description = "The requested range",
        content_type = "application/octet-stream"
    )]
    Range(crate::openapi::Binary),
    #[response(
        status = 302,
        description = "Served by the object store: `Location` has a short-lived link"
    )]
    Redirect,
    #[response(status = 304, description = "Not modified (If-None-Match)")]
    NotModified,
    #[response(status = 416, description = "The range is outside the file")]
    OutsideTheFile(vypusk_protocol::wire::ClientError),
}

/// A file through a signed link (SPEC §4.6): ranges, ETag, counted once per link.
#[utoipa::path(get, path = "/v1/files/{token}/{name}", tag = "downloads",
    operation_id = "downloadFile", params(LinkParams, RangeHeaders),
    responses(
        FileAnswers,
        (status = 403, description = "The link is invalid, expired, or no longer opens this file", body = vypusk_protocol::wire::ClientError),
    ))]
async fn download(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path((token, name)): Path<(String, String)>,
) -> Result<Response, ClientError> {
    let grant = state
        .tokens
        .verify(&token, chrono::Utc::now().timestamp())
        .map_err(|e| ClientError::forbidden(e.to_string()))?;
    let gone = || ClientError::not_found("this file is no longer available");
    let dist = state
        .catalog
        .distribution_by_id(grant.distribution)
        .filter(|d| d.published)
        .ok_or_else(gone)?;
    // One token per release (issue 9): it opens the files of that release and no other.
    let release = dist.release(grant.release).ok_or_else(gone)?;
    // A name the release does not have is a mismatching link (SPEC §4.6: 403).
    let file = release.file_named(&name).ok_or_else(|| {
        ClientError::forbidden("the download link does not open a file of that name")
    })?;
    // The license is checked again: a key revoked since the check loses its links, and a
    // prerelease link stops working once the license loses `beta` (SPEC §4.1 rule 2 holds on
    // every route: a release the caller may no longer see is answered like a missing one).
    let license = grant.license.and_then(|id| state.catalog.license_by_id(id));
    if release.prerelease
        && !licensing::sees_prereleases(
            license.as_deref(),
            crate::routes::client::in_prerelease_network(&state, ip),
        )
    {
        return Err(gone());
    }
    if dist.gate.is_some() {
        let standing = licensing::standing(dist.gate, license.as_deref());
        licensing::downloadable(&standing, release.published_at).map_err(ClientError::forbidden)?;
    }
    let counted = grant.count.then(|| CountedDownload {
        dedup_key: dedup_key(&[token.as_bytes(), &file.id.to_be_bytes()]),
        license_key: license.as_ref().map(|l| l.key.to_string()),
        conf: grant.conf,
        conf_version: grant.conf_version,
        installed_version: grant.installed_version,
    });
    serve_file(&state, &dist, release, file, &method, &headers, counted).await
}

/// Answers with the file's bytes (or a part, or a redirect, or only headers).
pub async fn serve_file(
    state: &AppState,
    dist: &Distribution,
    release: &Release,
    file: &File,
    method: &Method,
    headers: &HeaderMap,
    counted: Option<CountedDownload>,
) -> Result<Response, ClientError> {
    let sha256 = file.sha256_hex();
    let etag = format!("\"{sha256}\"");
    let key = BlobKey::from_sha256_hex(&sha256).map_err(ClientError::internal)?;

    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, header_value(&etag))],
        )
            .into_response());
    }

    // If-Range with another validator means the client's partial copy is stale: send it all.
    let range_applies = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) if range_applies => match parse_range(spec, file.size) {
            RangeRequest::Satisfiable(r) => Some(r),
            RangeRequest::Ignored => None,
            RangeRequest::Unsatisfiable => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [
                        (
                            header::CONTENT_RANGE,
                            header_value(&format!("bytes */{}", file.size)),
                        ),
                        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
                    ],
                )
                    .into_response());
            }
        },
        _ => None,
    };

    // Statistics: a counted GET becomes a download event when its body ends (see `stats`).
    // It begins a download when it serves the first byte: no range (or one ignored for a
    // stale If-Range, so the whole file), or a range from 0.
    let first_byte = range.as_ref().is_none_or(|r| r.start == 0);
    let counted = counted
        .filter(|_| *method != Method::HEAD)
        .map(|c| counted_event(dist, release, file, c, first_byte));
    let span = range.clone().unwrap_or(0..file.size);

    if state.settings.redirect_downloads && state.storage.supports_presign() {
        let ttl = std::time::Duration::from_secs(300);
        if let Some(url) = state
            .storage
            .presigned_get(&key, ttl)
            .await
            .map_err(ClientError::from)?
        {
            // The object store serves the bytes: assume it delivers the range.
            if let Some(mut event) = counted {
                event.bytes = span.end - span.start;
                event.completed = span.end == file.size;
                state.stats.download(event);
            }
            return Ok((
                StatusCode::FOUND,
                [(header::LOCATION, header_value(url.as_str()))],
            )
                .into_response());
        }
    }

    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::ETAG, header_value(&etag));
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(file.name()),
    );
    let (status, length) = match &range {
        Some(r) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{}", r.start, r.end - 1, file.size)),
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, file.size),
    };
    response_headers.insert(header::CONTENT_LENGTH, header_value(&length.to_string()));
    if *method == Method::HEAD {
        return Ok((status, response_headers).into_response());
    }
    let stream = state.storage.get(&key, range).await?;
    let stream = stream.map(|chunk| chunk.map_err(std::io::Error::other));
    let body = match counted {
        Some(event) => Body::from_stream(CountedStream {
            inner: stream,
            recorder: state.stats.clone(),
            event: Some(event),
            remaining: span.end - span.start,
            reaches_end: span.end == file.size,
        }),
        None => Body::from_stream(stream),
    };
    Ok((status, response_headers, body).into_response())
}

fn counted_event(
    dist: &Distribution,
    release: &Release,
    file: &File,
    c: CountedDownload,
    first_byte: bool,
) -> DownloadEvent {
    DownloadEvent {
        at: chrono::Utc::now(),
        distribution_id: dist.id,
        release_id: release.id,
        file_id: file.id,
        license_key: c.license_key,
        conf: c.conf,
        conf_version: c.conf_version,
        installed_version: c.installed_version,
        bytes: 0,
        first_byte,
        completed: false,
        dedup_key: c.dedup_key,
    }
}

/// The body of a counted download: counts the bytes handed to the connection and records the
/// download event when the body ends or is dropped (client gone, error, shutdown).
struct CountedStream<S> {
    inner: S,
    recorder: Recorder,
    event: Option<DownloadEvent>,
    /// Bytes of the response not yet handed over.
    remaining: u64,
    /// The response's range ends at the file's last byte.
    reaches_end: bool,
}

impl<S> Stream for CountedStream<S>
where
    S: Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let std::task::Poll::Ready(Some(Ok(chunk))) = &polled {
            let n = chunk.len() as u64;
            self.remaining = self.remaining.saturating_sub(n);
            if let Some(e) = self.event.as_mut() {
                e.bytes += n;
            }
        }
        polled
    }
}

impl<S> Drop for CountedStream<S> {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.completed = self.reaches_end && self.remaining == 0;
            self.recorder.download(event);
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266).
fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    header_value(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_valid_headers() {
        let v = content_disposition("Расширение \"1\".cfe");
        let s = v.to_str().unwrap();
        assert!(s.starts_with("attachment; filename=\""));
        assert!(s.contains("filename*=UTF-8''%D0%A0"));
    }
}
