//! Helpers shared by the services (and, re-exported by `routes::api::common`, the handlers):
//! list answers and paging, child rows, timestamps and text checks (`null` in edits is
//! `services::patch`). Nothing here knows HTTP.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `offset`, `limit` (default 100, max 1000) and `sort` of every list.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many items to skip.
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: u64,
    /// How many items at most (1 to 1000).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: u64,
    /// A field to sort by, `-` in front for descending (e.g. `-created_at`); the lists name
    /// the fields they sort by in the error to an unknown one.
    #[serde(default)]
    pub sort: Option<String>,
}

fn default_limit() -> u64 {
    100
}

impl Page {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.limit == 0 || self.limit > 1000 {
            return Err(ApiError::bad_request("limit must be between 1 and 1000"));
        }
        Ok(())
    }

    /// The column and direction to sort by: `sort` names one of `columns`, optionally prefixed
    /// with `-` for descending; without `sort`, `default`.
    pub fn order<C: Copy>(
        &self,
        columns: &[(&str, C)],
        default: (C, sea_orm::Order),
    ) -> Result<(C, sea_orm::Order), ApiError> {
        let Some(sort) = self.sort.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(default);
        };
        let (field, order) = match sort.strip_prefix('-') {
            Some(f) => (f, sea_orm::Order::Desc),
            None => (sort, sea_orm::Order::Asc),
        };
        match columns.iter().find(|(name, _)| *name == field) {
            Some((_, column)) => Ok((*column, order)),
            None => Err(ApiError::bad_request(format!(
                "cannot sort by {field:?}; allowed: {}",
                columns
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// A typed list answer: `{"items": [...], "total": N, "offset": o, "limit": l}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListOut<T> {
    /// This page.
    pub items: Vec<T>,
    /// How many items match, over all pages.
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

impl<T> ListOut<T> {
    pub fn new(items: Vec<T>, total: u64, page: &Page) -> Self {
        ListOut {
            items,
            total,
            offset: page.offset,
            limit: page.limit,
        }
    }
}

/// One page of `query` and the total it matches: sorted by `page.sort` (one of `columns`,
/// `-` for descending) or `default`, then by `tiebreak` so pages never overlap.
pub async fn paginate<E, C>(
    db: &C,
    query: Select<E>,
    page: &Page,
    columns: &[(&str, E::Column)],
    default: (E::Column, Order),
    tiebreak: (E::Column, Order),
) -> Result<(Vec<E::Model>, u64), ApiError>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    page.validate()?;
    let (column, order) = page.order(columns, default)?;
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by(column, order)
        .order_by(tiebreak.0, tiebreak.1)
        .offset(offset(page))
        .limit(page.limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// The rows of child entity `E` whose `parent_column` is one of `ids`, ordered by `order`,
/// grouped by parent id (`parent` reads it from a row). Queries in chunks of 500 ids.
pub async fn children_of<E, C>(
    db: &C,
    parent_column: E::Column,
    ids: &[i32],
    order: E::Column,
    parent: impl Fn(&E::Model) -> i32,
) -> Result<HashMap<i32, Vec<E::Model>>, ApiError>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    let mut out: HashMap<i32, Vec<E::Model>> = HashMap::new();
    for chunk in ids.chunks(500) {
        for row in E::find()
            .filter(parent_column.is_in(chunk.to_vec()))
            .order_by_asc(order)
            .all(db)
            .await?
        {
            out.entry(parent(&row)).or_default().push(row);
        }
    }
    Ok(out)
}

/// RFC 3339 with seconds, `Z` for UTC.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
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
