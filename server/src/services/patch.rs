//! Partial updates. One rule for every resource: `PUT` and `PATCH` change only the fields the
//! body names; a field sent as `null` clears it where the field is optional, and is refused
//! where it is not.
//!
//! A patch field is an `Option<Option<T>>`: `None` = absent (keep), `Some(None)` = `null`
//! (clear), `Some(Some(v))` = set. serde maps both absent and `null` to `None` for a plain
//! `Option`, so a field needs `#[serde(default, deserialize_with = "patch::field")]`. This is
//! `serde_with::rust::double_option` in four lines; serde_with is not otherwise in the
//! dependency tree and would bring a dozen crates for this one function.

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Absent → `None` (through `#[serde(default)]`), `null` → `Some(None)`, a value → `Some(Some)`.
pub fn field<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A field that may be changed but not cleared: `null` is a 400 naming `why`.
pub fn required<T>(name: &str, value: Option<Option<T>>, why: &str) -> Result<Option<T>, ApiError> {
    match value {
        None => Ok(None),
        Some(Some(v)) => Ok(Some(v)),
        Some(None) => Err(ApiError::bad_request(format!(
            "{name} cannot be null: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct P {
        #[serde(default, deserialize_with = "field")]
        a: Option<Option<String>>,
    }

    #[test]
    fn absent_null_and_value_differ() {
        let p: P = serde_json::from_str("{}").unwrap();
        assert_eq!(p.a, None);
        let p: P = serde_json::from_str(r#"{"a": null}"#).unwrap();
        assert_eq!(p.a, Some(None));
        let p: P = serde_json::from_str(r#"{"a": "x"}"#).unwrap();
        assert_eq!(p.a, Some(Some("x".to_owned())));
        assert!(serde_json::from_str::<P>(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn required_refuses_null() {
        assert_eq!(required::<bool>("beta", None, "x").unwrap(), None);
        assert_eq!(required("beta", Some(Some(true)), "x").unwrap(), Some(true));
        let e = required::<bool>("beta", Some(None), "true or false").unwrap_err();
        assert!(e.message.contains("beta cannot be null"), "{}", e.message);
    }
}
