//! Helpers shared by the vendor API's handlers: path extraction in the API's error shape,
//! list answers and timestamps.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::DbErr;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Page;
use crate::error::ApiError;

/// `Path<T>` whose rejections answer in the vendor API's error shape.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => {
            ApiError::bad_request(format!("invalid URL parameter: {}", e.body_text()))
        }
        other => ApiError::internal(other.body_text()),
    }
}

/// `{"items": [...], "total": N, "offset": o, "limit": l}`.
pub fn list(items: Vec<Value>, total: u64, page: &Page) -> Value {
    json!({
        "items": items,
        "total": total,
        "offset": page.offset,
        "limit": page.limit,
    })
}

/// RFC 3339 with seconds, `Z` for UTC.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn ts_opt(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// A unique-constraint violation becomes a 409 with `message`; anything else is internal.
pub fn conflict_on_unique(e: DbErr, message: impl FnOnce() -> String) -> ApiError {
    if crate::db::is_unique_violation(&e) {
        ApiError::conflict(message())
    } else {
        ApiError::internal(e)
    }
}

/// `offset` as the i64/u64 sea-orm wants, capped so it never overflows a backend.
pub fn offset(page: &Page) -> u64 {
    page.offset.min(i64::MAX as u64)
}

/// Builds a `Page` from the fields of a list query (lists with filters have their own query
/// struct, because `serde(flatten)` does not work with query strings' number fields).
pub fn page(
    offset: Option<u64>,
    limit: Option<u64>,
    sort: Option<String>,
) -> Result<Page, ApiError> {
    let page = Page {
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(100),
        sort,
    };
    page.validate()?;
    Ok(page)
}

/// Trims and rejects empty or overlong text fields.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{field} must not be empty")));
    }
    limited_text(field, value, max_chars)
}

pub fn limited_text(field: &str, value: &str, max_chars: usize) -> Result<String, ApiError> {
    if value.chars().count() > max_chars {
        return Err(ApiError::bad_request(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    Ok(value.to_owned())
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `\` as the escape character.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escapes() {
        assert_eq!(like_escape("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(like_escape("ООО Ромашка"), "ООО Ромашка");
    }

    #[test]
    fn pages() {
        assert!(page(None, Some(0), None).is_err());
        assert!(page(None, Some(1001), None).is_err());
        let p = page(Some(5), None, None).unwrap();
        assert_eq!((p.offset, p.limit), (5, 100));
    }

    #[test]
    fn texts() {
        assert_eq!(required_text("name", "  x ", 10).unwrap(), "x");
        assert!(required_text("name", "   ", 10).is_err());
        assert!(limited_text("name", "абв", 2).is_err());
    }
}
