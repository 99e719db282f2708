//! Russian and English for the browser pages (issue 13 item 4). Every UI string lives in one
//! Fluent catalogue per language, `locales/en/vypusk.ftl` and `locales/ru/vypusk.ftl`, compiled
//! into the binary; templates ask for messages by id (`{{ tr.t("nav-releases") }}`).
//!
//! The language of a request: the `vypusk_lang` cookie that the switch at `/lang/{ru|en}`
//! sets; otherwise the first language of `Accept-Language` that is Russian, English or written
//! in Cyrillic (a Cyrillic-locale browser — uk, be, kk, … — gets Russian); otherwise English.
//! Dates and numbers follow the language: `30.11.2026` and `1 234 567` in Russian,
//! `2026-11-30` and `1,234,567` in English.

use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "vypusk_lang";

const EN_FTL: &str = include_str!("../locales/en/vypusk.ftl");
const RU_FTL: &str = include_str!("../locales/ru/vypusk.ftl");

/// Languages whose browsers get the Russian pages: Russian and the languages usually written
/// in Cyrillic.
const CYRILLIC_LANGUAGES: &[&str] = &[
    "ru", "uk", "be", "bg", "kk", "ky", "mk", "mn", "sr", "tg", "tt", "ba", "cv", "sah", "os",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Ru, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// From an `Accept-Language` value: the first language (by q, then order) that is
    /// English or Russian or written in Cyrillic.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut ranges: Vec<(f32, usize, &str)> = value
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut it = part.trim().split(';');
                let tag = it.next()?.trim();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0 && !tag.is_empty()).then_some((q, i, tag))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.into_iter().find_map(|(_, _, tag)| {
            let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
            if primary == "en" {
                Some(Lang::En)
            } else if CYRILLIC_LANGUAGES.contains(&primary.as_str())
                || tag.to_ascii_lowercase().contains("-cyrl")
            {
                Some(Lang::Ru)
            } else {
                None
            }
        })
    }

    /// The request's language (see the module).
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) =
            crate::routes::reports::cookie(headers, LANG_COOKIE).and_then(Lang::parse)
        {
            return lang;
        }
        headers
            .get_all(axum::http::header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Lang::from_accept_language)
            .unwrap_or(Lang::En)
    }
}

type Bundle = FluentBundle<FluentResource>;

fn bundle(lang: Lang) -> &'static Bundle {
    static EN: OnceLock<Bundle> = OnceLock::new();
    static RU: OnceLock<Bundle> = OnceLock::new();
    let (cell, source, id) = match lang {
        Lang::En => (&EN, EN_FTL, "en"),
        Lang::Ru => (&RU, RU_FTL, "ru"),
    };
    cell.get_or_init(|| {
        let resource =
            FluentResource::try_new(source.to_owned()).unwrap_or_else(|(resource, errors)| {
                tracing::error!(
                    ?errors,
                    lang = lang.code(),
                    "the Fluent catalogue has errors"
                );
                resource
            });
        let id: unic_langid::LanguageIdentifier = id.parse().unwrap_or_default();
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // No Unicode isolation marks around arguments: the pages are left-to-right only.
        bundle.set_use_isolating(false);
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(
                ?errors,
                lang = lang.code(),
                "the Fluent catalogue has clashes"
            );
        }
        bundle
    })
}

/// The translator of one request: messages, dates and numbers in its language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(pub Lang);

impl Tr {
    pub fn lang(&self) -> &'static str {
        self.0.code()
    }

    /// The code of the language the switch offers.
    pub fn other(&self) -> &'static str {
        match self.0 {
            Lang::Ru => "en",
            Lang::En => "ru",
        }
    }

    /// Message `id`; a missing one shows its id (and is a test failure, see the tests).
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// Message `id` with one argument.
    pub fn t1(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name, FluentValue::from(value.to_string()));
        self.format(id, Some(&args))
    }

    /// Message `id` with two arguments.
    pub fn t2(
        &self,
        id: &str,
        a: (&str, &dyn std::fmt::Display),
        b: (&str, &dyn std::fmt::Display),
    ) -> String {
        let mut args = FluentArgs::new();
        args.set(a.0, FluentValue::from(a.1.to_string()));
        args.set(b.0, FluentValue::from(b.1.to_string()));
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = bundle(self.0);
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::warn!(id, lang = self.lang(), "no such message");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(id, ?errors, "a message did not format");
        }
        text.into_owned()
    }

    /// A whole number with the language's grouping: `1,234,567` or `1 234 567` (narrow
    /// no-break spaces, as Russian typesetting has them).
    pub fn number(&self, n: i64) -> String {
        let sep = match self.0 {
            Lang::En => ",",
            Lang::Ru => "\u{202f}",
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    }

    /// A date: `2026-11-30` or `30.11.2026`.
    pub fn date(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        match self.0 {
            Lang::En => at.format("%Y-%m-%d").to_string(),
            Lang::Ru => at.format("%d.%m.%Y").to_string(),
        }
    }

    /// A moment to the minute, UTC: `2026-11-30 14:05 UTC` or `30.11.2026 14:05 UTC`.
    pub fn time(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        match self.0 {
            Lang::En => at.format("%Y-%m-%d %H:%M UTC").to_string(),
            Lang::Ru => at.format("%d.%m.%Y %H:%M UTC").to_string(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Tr(Lang::of(&parts.headers)))
    }
}

/// `GET /lang/{ru|en}?next=…`: the language switch. Remembers the choice in the
/// `vypusk_lang` cookie for a year and goes back to `next` (a local page). Only a preference
/// changes, nothing on the server, so a link is enough.
pub fn router() -> axum::Router<crate::state::AppState> {
    axum::Router::new().route("/lang/{code}", axum::routing::get(switch))
}

#[derive(serde::Deserialize, Default)]
struct Next {
    next: Option<String>,
}

async fn switch(
    axum::extract::Path(code): axum::extract::Path<String>,
    crate::client_addr::ForwardedHttps(https): crate::client_addr::ForwardedHttps,
    axum::extract::Query(q): axum::extract::Query<Next>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(lang) = Lang::parse(&code) else {
        return (axum::http::StatusCode::NOT_FOUND, "no such language").into_response();
    };
    let next = crate::routes::reports::safe_next(q.next.as_deref().unwrap_or(""));
    let mut response = axum::response::Redirect::to(next).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{}",
        lang.code(),
        if https { "; Secure" } else { "" }
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, v);
    }
    response
}

/// The message ids of a catalogue, in order.
pub fn message_ids(lang: Lang) -> Vec<String> {
    let source = match lang {
        Lang::En => EN_FTL,
        Lang::Ru => RU_FTL,
    };
    source
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_russian_for_cyrillic_locales() {
        assert_eq!(
            Lang::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Some(Lang::Ru)
        );
        assert_eq!(Lang::from_accept_language("uk-UA,uk;q=0.9"), Some(Lang::Ru));
        assert_eq!(Lang::from_accept_language("sr-Cyrl-RS"), Some(Lang::Ru));
        assert_eq!(
            Lang::from_accept_language("de-DE,en;q=0.5,ru;q=0.4"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.3, kk;q=0.9"),
            Some(Lang::Ru)
        );
        assert_eq!(Lang::from_accept_language("fr, de"), None);
        assert_eq!(Lang::from_accept_language("ru;q=0, en"), Some(Lang::En));
    }

    #[test]
    fn both_catalogues_have_the_same_messages_and_they_format() {
        let en = message_ids(Lang::En);
        let ru = message_ids(Lang::Ru);
        let mut a = en.clone();
        let mut b = ru.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "the two catalogues must name the same messages");
        for lang in Lang::ALL {
            for id in message_ids(lang) {
                assert!(
                    bundle(lang).has_message(&id),
                    "{id} is missing in {}",
                    lang.code()
                );
                assert!(
                    !Tr(lang).t(&id).is_empty(),
                    "{id} is empty in {}",
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn every_message_a_template_asks_for_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        let ids = message_ids(Lang::En);
        let mut stack = vec![root];
        let mut checked = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for call in [".t(\"", ".t1(\"", ".t2(\""] {
                    for part in text.split(call).skip(1) {
                        let id = part.split('"').next().unwrap();
                        assert!(
                            ids.iter().any(|i| i == id),
                            "{}: no message {id}",
                            path.display()
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn numbers_and_dates_follow_the_language() {
        assert_eq!(Tr(Lang::En).number(1_234_567), "1,234,567");
        assert_eq!(Tr(Lang::Ru).number(-1_234_567), "-1\u{202f}234\u{202f}567");
        assert_eq!(Tr(Lang::Ru).number(999), "999");
        let at = "2026-11-30T14:05:00Z".parse().unwrap();
        assert_eq!(Tr(Lang::Ru).date(at), "30.11.2026");
        assert_eq!(Tr(Lang::En).time(at), "2026-11-30 14:05 UTC");
    }
}
