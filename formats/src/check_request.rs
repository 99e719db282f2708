//! The JSON body of the client protocol's POST requests (SPEC §4, §4.1, §4.3), parsed from
//! bytes into a typed struct of borrowed strings.
//!
//! Rules (SPEC §4): the body is a JSON object, after an optional UTF-8 byte-order mark; request
//! keys are UPPERCASE and unknown keys are ignored (a repeated key: the last one counts, as in
//! any JSON object); values are strings, trimmed, absent or `null` = not given; flags are
//! `"Y"`/`"N"`, also `true`/`false`. A field of the wrong type is an error only when the
//! request asks for that field, so the server reports problems in the order it always has.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a body is refused before any field is looked at.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("malformed JSON: {0}")]
    Malformed(serde_json::Error),
}

/// Why one field is refused; the message names the request key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{0} must be a string")]
    NotAString(&'static str),
    #[error("{0} is required")]
    Required(&'static str),
    #[error("{0} must be \"Y\" or \"N\"")]
    NotAFlag(&'static str),
}

/// A string field as it came: not there, `null`, a string, or something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextValue<'a> {
    Absent,
    Null,
    Text(Cow<'a, str>),
    NotText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextField<'a> {
    /// The request key, for error messages.
    pub key: &'static str,
    pub value: TextValue<'a>,
}

impl<'a> TextField<'a> {
    fn absent(key: &'static str) -> Self {
        TextField {
            key,
            value: TextValue::Absent,
        }
    }

    /// The trimmed string; absent and `null` are `None`, other types an error.
    pub fn text(&self) -> Result<Option<&str>, FieldError> {
        match &self.value {
            TextValue::Absent | TextValue::Null => Ok(None),
            TextValue::Text(s) => Ok(Some(s.trim())),
            TextValue::NotText => Err(FieldError::NotAString(self.key)),
        }
    }

    /// The trimmed string, which must not be empty.
    pub fn required(&self) -> Result<&str, FieldError> {
        self.text()?
            .filter(|s| !s.is_empty())
            .ok_or(FieldError::Required(self.key))
    }

    fn into_owned(self) -> TextField<'static> {
        let value = match self.value {
            TextValue::Absent => TextValue::Absent,
            TextValue::Null => TextValue::Null,
            TextValue::Text(s) => TextValue::Text(Cow::Owned(s.into_owned())),
            TextValue::NotText => TextValue::NotText,
        };
        TextField {
            key: self.key,
            value,
        }
    }
}

/// A flag field: not there, a valid flag, or something that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagValue {
    Absent,
    Flag(bool),
    NotAFlag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagField {
    /// The request key, for error messages.
    pub key: &'static str,
    pub value: FlagValue,
}

impl FlagField {
    fn absent(key: &'static str) -> Self {
        FlagField {
            key,
            value: FlagValue::Absent,
        }
    }

    /// Absent is `false`.
    pub fn flag(&self) -> Result<bool, FieldError> {
        match self.value {
            FlagValue::Absent => Ok(false),
            FlagValue::Flag(b) => Ok(b),
            FlagValue::NotAFlag => Err(FieldError::NotAFlag(self.key)),
        }
    }
}

/// The fields of `getAvailableReleases`, `getLatestRelease` and `getModuleInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequestBody<'a> {
    pub type_code: TextField<'a>,
    pub installed_version: TextField<'a>,
    pub conf: TextField<'a>,
    pub conf_version: TextField<'a>,
    pub key: TextField<'a>,
    pub show_untested: FlagField,
    pub count_downloads: FlagField,
    pub downloadable_only: FlagField,
}

/// The request keys this body knows; others are ignored.
pub const TEXT_KEYS: [&str; 5] = ["TYPE", "INSTALLED_VERSION", "CONF", "CONF_VERSION", "KEY"];
pub const FLAG_KEYS: [&str; 3] = ["SHOW_UNTESTED", "COUNT_DOWNLOADS", "DOWNLOADABLE_ONLY"];

impl Default for CheckRequestBody<'_> {
    /// The empty object `{}`.
    fn default() -> Self {
        CheckRequestBody {
            type_code: TextField::absent("TYPE"),
            installed_version: TextField::absent("INSTALLED_VERSION"),
            conf: TextField::absent("CONF"),
            conf_version: TextField::absent("CONF_VERSION"),
            key: TextField::absent("KEY"),
            show_untested: FlagField::absent("SHOW_UNTESTED"),
            count_downloads: FlagField::absent("COUNT_DOWNLOADS"),
            downloadable_only: FlagField::absent("DOWNLOADABLE_ONLY"),
        }
    }
}

impl<'a> CheckRequestBody<'a> {
    /// Parses a request body; strings without escapes borrow from `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BodyError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match serde_json::from_slice::<Outcome<'a>>(bytes) {
            Ok(Outcome(Some(body))) => Ok(body),
            Ok(Outcome(None)) => Err(BodyError::NotAnObject),
            Err(e) => Err(BodyError::Malformed(e)),
        }
    }

    /// The same body, owning its strings (to outlive the request's bytes).
    pub fn into_owned(self) -> CheckRequestBody<'static> {
        CheckRequestBody {
            type_code: self.type_code.into_owned(),
            installed_version: self.installed_version.into_owned(),
            conf: self.conf.into_owned(),
            conf_version: self.conf_version.into_owned(),
            key: self.key.into_owned(),
            show_untested: self.show_untested,
            count_downloads: self.count_downloads,
            downloadable_only: self.downloadable_only,
        }
    }

    /// The string field named by its request key; a key this body does not know reads as
    /// absent, like a key the client did not send.
    pub fn text(&self, key: &str) -> Result<Option<&str>, FieldError> {
        self.text_field(key).map_or(Ok(None), TextField::text)
    }

    /// The non-empty string field named by its request key.
    pub fn required(&self, key: &'static str) -> Result<&str, FieldError> {
        match self.text_field(key) {
            Some(field) => field.required(),
            None => Err(FieldError::Required(key)),
        }
    }

    /// The flag named by its request key; absent is `false`.
    pub fn flag(&self, key: &str) -> Result<bool, FieldError> {
        self.flag_field(key).map_or(Ok(false), FlagField::flag)
    }

    fn text_field(&self, key: &str) -> Option<&TextField<'a>> {
        match key {
            "TYPE" => Some(&self.type_code),
            "INSTALLED_VERSION" => Some(&self.installed_version),
            "CONF" => Some(&self.conf),
            "CONF_VERSION" => Some(&self.conf_version),
            "KEY" => Some(&self.key),
            _ => None,
        }
    }

    fn flag_field(&self, key: &str) -> Option<&FlagField> {
        match key {
            "SHOW_UNTESTED" => Some(&self.show_untested),
            "COUNT_DOWNLOADS" => Some(&self.count_downloads),
            "DOWNLOADABLE_ONLY" => Some(&self.downloadable_only),
            _ => None,
        }
    }
}

/// Flags are `"Y"`/`"N"` on the wire; `true`/`false` (as JSON or strings) are accepted too.
pub fn parse_flag(value: &serde_json::Value) -> Option<bool> {
    match value {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => flag_text(s),
        serde_json::Value::Null => Some(false),
        _ => None,
    }
}

fn flag_text(s: &str) -> Option<bool> {
    match s.trim().to_ascii_uppercase().as_str() {
        "Y" | "YES" | "TRUE" | "1" => Some(true),
        "N" | "NO" | "FALSE" | "0" | "" => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Deserialization. Every value goes through `deserialize_any`, the path `serde_json::Value`
// takes, so numbers, escapes and nesting are checked exactly as before and malformed bodies
// get the same messages.

/// The body, or `None` for valid JSON that is not an object.
struct Outcome<'a>(Option<CheckRequestBody<'a>>);

impl<'de> Deserialize<'de> for Outcome<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Outcome<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut body = CheckRequestBody::default();
        while let Some(key) = map.next_key::<RequestKey>()? {
            match key {
                RequestKey::Type => body.type_code.value = map.next_value()?,
                RequestKey::InstalledVersion => body.installed_version.value = map.next_value()?,
                RequestKey::Conf => body.conf.value = map.next_value()?,
                RequestKey::ConfVersion => body.conf_version.value = map.next_value()?,
                RequestKey::Key => body.key.value = map.next_value()?,
                RequestKey::ShowUntested => body.show_untested.value = map.next_value()?,
                RequestKey::CountDownloads => body.count_downloads.value = map.next_value()?,
                RequestKey::DownloadableOnly => body.downloadable_only.value = map.next_value()?,
                RequestKey::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(Outcome(Some(body)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Outcome(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Outcome(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Outcome(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Outcome(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Outcome(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Outcome(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Outcome(None))
    }
}

enum RequestKey {
    Type,
    InstalledVersion,
    Conf,
    ConfVersion,
    Key,
    ShowUntested,
    CountDownloads,
    DownloadableOnly,
    Other,
}

impl<'de> Deserialize<'de> for RequestKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = RequestKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<RequestKey, E> {
        Ok(match key {
            "TYPE" => RequestKey::Type,
            "INSTALLED_VERSION" => RequestKey::InstalledVersion,
            "CONF" => RequestKey::Conf,
            "CONF_VERSION" => RequestKey::ConfVersion,
            "KEY" => RequestKey::Key,
            "SHOW_UNTESTED" => RequestKey::ShowUntested,
            "COUNT_DOWNLOADS" => RequestKey::CountDownloads,
            "DOWNLOADABLE_ONLY" => RequestKey::DownloadableOnly,
            _ => RequestKey::Other,
        })
    }
}

impl<'de> Deserialize<'de> for TextValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = TextValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(TextValue::Text(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(TextValue::Text(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(TextValue::Text(Cow::Owned(s)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(TextValue::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(TextValue::NotText)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(TextValue::NotText)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(TextValue::NotText)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(TextValue::NotText)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(TextValue::NotText)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(TextValue::NotText)
    }
}

impl<'de> Deserialize<'de> for FlagValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FlagVisitor)
    }
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = FlagValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(flag_text(s).map_or(FlagValue::NotAFlag, FlagValue::Flag))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(FlagValue::Flag(b))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FlagValue::Flag(false))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(FlagValue::NotAFlag)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(FlagValue::NotAFlag)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(FlagValue::NotAFlag)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(FlagValue::NotAFlag)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(FlagValue::NotAFlag)
    }
}

/// Any JSON value, checked in full and thrown away.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
        drain_seq(seq)?;
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        drain_map(map)?;
        Ok(Skip)
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<Skip, Skip>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> CheckRequestBody<'_> {
        CheckRequestBody::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn fields_are_trimmed_strings_borrowed_when_plain() {
        let body = parse(
            r#"{"TYPE": " PT40 ", "CONF": "\u0423\u0422", "CONF_VERSION": "11.5",
                "INSTALLED_VERSION": null, "other": [1, {"x": 2}], "SHOW_UNTESTED": "y"}"#,
        );
        assert_eq!(body.required("TYPE"), Ok("PT40"));
        assert!(matches!(
            body.type_code.value,
            TextValue::Text(Cow::Borrowed(_))
        ));
        assert_eq!(body.required("CONF"), Ok("УТ"));
        assert_eq!(body.text("INSTALLED_VERSION"), Ok(None));
        assert_eq!(body.text("KEY"), Ok(None));
        assert_eq!(body.flag("SHOW_UNTESTED"), Ok(true));
        assert_eq!(body.flag("COUNT_DOWNLOADS"), Ok(false));
        assert_eq!(body.clone().into_owned(), body);
    }

    #[test]
    fn errors_name_the_key() {
        let body = parse(r#"{"TYPE": 5, "CONF": "  ", "SHOW_UNTESTED": "maybe", "KEY": [1]}"#);
        assert_eq!(
            body.required("TYPE").unwrap_err().to_string(),
            "TYPE must be a string"
        );
        assert_eq!(
            body.required("CONF").unwrap_err().to_string(),
            "CONF is required"
        );
        assert_eq!(
            body.required("CONF_VERSION").unwrap_err().to_string(),
            "CONF_VERSION is required"
        );
        assert_eq!(
            body.flag("SHOW_UNTESTED").unwrap_err().to_string(),
            "SHOW_UNTESTED must be \"Y\" or \"N\""
        );
        assert_eq!(
            body.text("KEY").unwrap_err().to_string(),
            "KEY must be a string"
        );
    }

    #[test]
    fn last_of_repeated_keys_counts_and_lowercase_keys_are_unknown() {
        let body = parse(r#"{"TYPE": 1, "TYPE": "B", "type": "C"}"#);
        assert_eq!(body.required("TYPE"), Ok("B"));
    }

    #[test]
    fn not_an_object_or_malformed() {
        for text in ["[]", "[1, {}]", "\"x\"", "1", "true", "null"] {
            assert!(
                matches!(
                    CheckRequestBody::parse(text.as_bytes()),
                    Err(BodyError::NotAnObject)
                ),
                "{text}"
            );
        }
        for text in [
            "",
            "{",
            "{} x",
            "{\"TYPE\": 1e999}",
            "[1e999]",
            "\u{feff}\u{feff}{}",
        ] {
            let err = CheckRequestBody::parse(text.as_bytes()).unwrap_err();
            assert!(
                err.to_string().starts_with("malformed JSON: "),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let body = CheckRequestBody::parse(b"\xEF\xBB\xBF{\"TYPE\": \"A\"}").unwrap();
        assert_eq!(body.required("TYPE"), Ok("A"));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag(&json!("Y")), Some(true));
        assert_eq!(parse_flag(&json!("n")), Some(false));
        assert_eq!(parse_flag(&json!(true)), Some(true));
        assert_eq!(parse_flag(&json!("false")), Some(false));
        assert_eq!(parse_flag(&json!("maybe")), None);
        assert_eq!(parse_flag(&json!(1)), None);
        let body =
            parse(r#"{"SHOW_UNTESTED": null, "COUNT_DOWNLOADS": " yes ", "DOWNLOADABLE_ONLY": 0}"#);
        assert_eq!(body.flag("SHOW_UNTESTED"), Ok(false));
        assert_eq!(body.flag("COUNT_DOWNLOADS"), Ok(true));
        assert!(body.flag("DOWNLOADABLE_ONLY").is_err());
    }
}
