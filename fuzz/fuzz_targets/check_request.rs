//! The client protocol's request body (SPEC §4): `CheckRequestBody::parse` against the parser
//! it replaced (a `serde_json::Value` object read key by key, copied below as it was at
//! 1cf0db8, plus the byte-order mark SPEC §4 allows). Every field read and every error message
//! must be the same, and field values come back trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use vypusk_formats::CheckRequestBody;
use vypusk_formats::check_request::{FLAG_KEYS, TEXT_KEYS};

fuzz_target!(|data: &[u8]| {
    let new = CheckRequestBody::parse(data);
    let old = reference::parse(data);
    match (new, old) {
        (Err(new), Err(old)) => assert_eq!(new.to_string(), old),
        (Ok(body), Ok(map)) => {
            for key in TEXT_KEYS {
                let text = body.text(key).map_err(|e| e.to_string());
                assert_eq!(text, reference::text_field(&map, key), "{key}");
                if let Ok(Some(value)) = text {
                    assert_eq!(value.trim(), value, "{key} is trimmed");
                }
                assert_eq!(
                    body.required(key).map_err(|e| e.to_string()),
                    reference::required_field(&map, key),
                    "{key}"
                );
            }
            for key in FLAG_KEYS {
                assert_eq!(
                    body.flag(key).map_err(|e| e.to_string()),
                    reference::flag_field(&map, key),
                    "{key}"
                );
            }
            assert_eq!(body.clone().into_owned(), body);
        }
        (new, old) => panic!("outcomes differ: new {new:?}, old {old:?}"),
    }
});

/// server/src/routes/client.rs and server/src/domain/names.rs at 1cf0db8, with errors as text.
mod reference {
    use super::*;

    pub fn parse(bytes: &[u8]) -> Result<Map<String, Value>, String> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("the request body must be a JSON object".into()),
            Err(e) => Err(format!("malformed JSON: {e}")),
        }
    }

    pub fn text_field<'a>(
        body: &'a Map<String, Value>,
        key: &str,
    ) -> Result<Option<&'a str>, String> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(format!("{key} must be a string")),
        }
    }

    pub fn required_field<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
        text_field(body, key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{key} is required"))
    }

    pub fn flag_field(body: &Map<String, Value>, key: &str) -> Result<bool, String> {
        match body.get(key) {
            None => Ok(false),
            Some(v) => parse_flag(v).ok_or_else(|| format!("{key} must be \"Y\" or \"N\"")),
        }
    }

    fn parse_flag(value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
                "Y" | "YES" | "TRUE" | "1" => Some(true),
                "N" | "NO" | "FALSE" | "0" | "" => Some(false),
                _ => None,
            },
            Value::Null => Some(false),
            _ => None,
        }
    }
}
