//! The HTTP side of the remote commands (`vypusk distribution|release|license|api-key …`):
//! the common flags, a small client of the vendor API (SPEC §5) with typed errors and exit
//! codes, and the two ways of printing an answer (a table or `key: value` lines, or the
//! server's JSON with `--json`).

use std::fmt;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Exit code of a usage error (clap's own, also a missing API key or a bad flag value).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server cannot be reached or does not answer like vypusk.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when the server refused the request (any non-2xx answer of the vendor API).
pub const EXIT_REFUSED: u8 = 4;

/// Flags of every remote command. `global`, so they may stand before or after the
/// subcommand: `vypusk release --json list --type X` and `vypusk release list --type X --json`.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Base URL of the vypusk server.
    #[arg(
        long,
        env = "VYPUSK_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API key of the vendor API (`vypk_…`).
    #[arg(long, env = "VYPUSK_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Print the server's JSON answer (pretty, the API's fields in its order) instead of a
    /// table.
    #[arg(long, global = true)]
    pub json: bool,
}

impl RemoteArgs {
    /// The API key, if one was given (an empty or blank one counts as none).
    pub fn key(&self) -> Option<&str> {
        self.api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// A client for the server; without an API key, a usage error naming `what`.
    pub fn client(&self, what: &str) -> Result<Remote, CliError> {
        let Some(key) = self.key() else {
            return Err(CliError::Usage(format!(
                "`vypusk {what}` works over HTTP and needs an API key: give --api-key KEY or set VYPUSK_API_KEY (create one with `vypusk api-key create`)"
            )));
        };
        Remote::new(&self.server, key)
    }
}

/// Why a remote command failed; each kind has its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Wrong or missing flags: exit 2.
    Usage(String),
    /// No connection, or an answer that is not the vendor API's: exit 3.
    Unreachable(String),
    /// The server refused (4xx/5xx with the vendor API's error shape): exit 4.
    Refused {
        status: StatusCode,
        message: String,
        hint: Option<String>,
    },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Unreachable(_) => EXIT_UNREACHABLE,
            CliError::Refused { .. } => EXIT_REFUSED,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Unreachable(m) => f.write_str(m),
            CliError::Refused {
                status,
                message,
                hint,
            } => {
                write!(f, "the server refused ({status}): {message}")?;
                if let Some(hint) = hint {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CliError {}

/// The exit code for an error of any command: that of a [`CliError`] in its chain, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|c| c.downcast_ref::<CliError>())
        .map_or(1, CliError::exit_code)
}

/// A client of one server's vendor API with one API key.
pub struct Remote {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Remote {
    pub fn new(server: &str, key: &str) -> Result<Remote, CliError> {
        let base = server.trim().trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base)
            .map_err(|e| CliError::Usage(format!("--server {server:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!(
                "--server {server:?}: expected an http:// or https:// URL"
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::Unreachable(format!("cannot set up HTTP: {e}")))?;
        Ok(Remote {
            client,
            base,
            key: key.to_owned(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `/api{path}` with the API key.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// Sends `req`; a 2xx answer's JSON text (`None` for an empty body, e.g. 204), or a
    /// typed error. `permission` is what the route needs, named when the server says 403.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        permission: &str,
    ) -> Result<Option<String>, CliError> {
        let resp = req.send().await.map_err(|e| {
            CliError::Unreachable(format!(
                "cannot reach the vypusk server at {}: {}",
                self.base,
                error_chain(&e)
            ))
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            CliError::Unreachable(format!(
                "the server at {} broke off its answer: {}",
                self.base,
                error_chain(&e)
            ))
        })?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(None);
            }
            if value.is_none() {
                return Err(not_vypusk(&self.base, status, &text));
            }
            return Ok(Some(text));
        }
        let Some(message) = value
            .as_ref()
            .and_then(|v| v.get("Message"))
            .and_then(Value::as_str)
        else {
            return Err(not_vypusk(&self.base, status, &text));
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED => Some(
                "check --api-key / VYPUSK_API_KEY: the server does not know this key".to_owned(),
            ),
            StatusCode::FORBIDDEN => Some(format!(
                "this command needs an API key with the {permission} permission"
            )),
            _ => None,
        };
        Err(CliError::Refused {
            status,
            message: message.to_owned(),
            hint,
        })
    }

    /// [`Remote::send`] for answers that must have a JSON body.
    pub async fn json(
        &self,
        req: reqwest::RequestBuilder,
        permission: &str,
    ) -> Result<Answer, CliError> {
        match self.send(req, permission).await? {
            Some(text) => Ok(Answer::parse(text)),
            None => Err(CliError::Unreachable(format!(
                "the server at {} answered without a body where vypusk answers JSON",
                self.base
            ))),
        }
    }
}

fn not_vypusk(base: &str, status: StatusCode, text: &str) -> CliError {
    let excerpt: String = text.trim().chars().take(200).collect();
    CliError::Unreachable(format!(
        "the server at {base} did not answer like vypusk ({status}{}{excerpt}); check --server / VYPUSK_SERVER",
        if excerpt.is_empty() { "" } else { ": " }
    ))
}

/// An error and its sources on one line (reqwest's own says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A JSON answer: its text as the server sent it (for `--json`) and its parsed value.
pub struct Answer {
    pub text: String,
    pub value: Value,
}

impl Answer {
    fn parse(text: String) -> Answer {
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { text, value }
    }

    /// A value made here (the data-directory commands), printed the same way.
    pub fn of<T: serde::Serialize>(value: &T) -> Answer {
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        Answer::parse(text)
    }
}

/// Percent-encodes one path segment.
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

// ---------------------------------------------------------------------------------------
// Output

/// Re-indents compact JSON text, keeping the order of its fields (a `Value` would sort them):
/// two spaces, `"key": value`, empty objects and arrays as `{}` and `[]`.
pub fn pretty(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Prints `answer` as `--json` wants it.
pub fn print_json(answer: &Answer) {
    println!("{}", pretty(&answer.text));
}

/// A table (ASCII, Markdown-like, no wrapping, Cyrillic aligned by display width).
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

/// A cell for a JSON value: strings bare, `null` empty, arrays joined with `, `.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A column of a list: its title and how to render an item.
pub type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// A list answer `{"items", "total", "offset", "limit"}` as a table of `columns` (title, and
/// how to render an item), with a line under it when the page does not hold every item.
pub fn print_list(answer: &Answer, columns: &[Column]) {
    let items = answer.value["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = answer.value["total"].as_u64().unwrap_or(items.len() as u64);
    if items.is_empty() {
        println!("nothing found (total {total})");
        return;
    }
    let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows = items
        .iter()
        .map(|item| columns.iter().map(|(_, f)| f(item)).collect())
        .collect();
    println!("{}", table(&header, rows));
    let offset = answer.value["offset"].as_u64().unwrap_or(0);
    if offset > 0 || (items.len() as u64) < total {
        println!(
            "{}–{} of {total}; see the others with --offset and --limit",
            offset + 1,
            offset + items.len() as u64
        );
    }
}

/// One object as `key: value` lines, in the order given, then any other fields.
pub fn print_object(value: &Value, order: &[&str], render: &dyn Fn(&str, &Value) -> String) {
    let Some(map) = value.as_object() else {
        println!("{}", cell(value));
        return;
    };
    let mut keys: Vec<&str> = order
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    keys.extend(
        map.keys()
            .map(String::as_str)
            .filter(|k| !order.contains(k)),
    );
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    for k in keys {
        let text = render(k, &map[k]);
        let mut lines = text.lines();
        // No trailing blanks after a key whose value is empty.
        let first = format!("{k:<width$}  {}", lines.next().unwrap_or(""));
        println!("{}", first.trim_end());
        for line in lines {
            println!("{:<width$}  {line}", "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_keeps_the_order_and_strings() {
        let text = r#"{"z":1,"a":{"b":[1,2],"e":[],"o":{}},"s":"x,{:}\"y","n":null}"#;
        let out = pretty(text);
        assert_eq!(
            out,
            "{\n  \"z\": 1,\n  \"a\": {\n    \"b\": [\n      1,\n      2\n    ],\n    \"e\": [],\n    \"o\": {}\n  },\n  \"s\": \"x,{:}\\\"y\",\n  \"n\": null\n}"
        );
        // The same JSON as the input.
        let a: Value = serde_json::from_str(text).unwrap();
        let b: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(a, b);
        assert_eq!(pretty("[]"), "[]");
    }

    #[test]
    fn table_aligns_cyrillic() {
        let t = table(
            &["key", "customer"],
            vec![
                vec!["A-1".into(), "ООО Ромашка".into()],
                vec!["B-22".into(), "x".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[0].contains("customer") && lines[2].contains("ООО Ромашка"),
            "{t}"
        );
        // Every line has the same display width.
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{t}");
    }

    #[test]
    fn exit_codes() {
        let refused = CliError::Refused {
            status: StatusCode::FORBIDDEN,
            message: "no".into(),
            hint: Some("needs licenses".into()),
        };
        assert_eq!(
            refused.to_string(),
            "the server refused (403 Forbidden): no (needs licenses)"
        );
        assert_eq!(exit_code(&anyhow::Error::new(refused)), EXIT_REFUSED);
        assert_eq!(
            exit_code(&anyhow::Error::new(CliError::Usage("x".into())).context("y")),
            EXIT_USAGE
        );
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
        assert_eq!(segment("a b/ж"), "a%20b%2F%D0%B6");
    }

    #[test]
    fn a_key_is_needed() {
        let args = RemoteArgs {
            server: "http://127.0.0.1:1".into(),
            api_key: Some("  ".into()),
            json: false,
        };
        let err = args.client("license list").err().expect("no key");
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(err.to_string().contains("VYPUSK_API_KEY"), "{err}");
        let bad = RemoteArgs {
            server: "ftp://x".into(),
            api_key: Some("k".into()),
            json: false,
        };
        assert_eq!(
            bad.client("x").err().map(|e| e.exit_code()),
            Some(EXIT_USAGE)
        );
    }
}
