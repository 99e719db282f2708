//! A WebDriver client for the browser tests: headless Chromium driven over chromedriver,
//! spoken to directly with reqwest (no WebDriver crate: the dozen calls the tests need are
//! plain JSON).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::workspace_root;

/// Chromium and chromedriver, or a panic saying how to get them: the browser tests are never
/// skipped.
pub fn browser_binaries() -> (PathBuf, PathBuf) {
    let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_binary(&["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!(
            "chromium and chromedriver are needed: apt-get install chromium chromium-driver \
             (.ci/run installs them)"
        ),
    }
}

pub fn find_binary(names: &[&str]) -> Option<PathBuf> {
    for name in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = PathBuf::from(dir).join(name);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Ends the browser session (so Chromium exits), then chromedriver.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if !self.session.is_empty() {
            let host = self.base.trim_start_matches("http://");
            if let Ok(mut conn) = std::net::TcpStream::connect(host) {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    conn,
                    "DELETE /session/{} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                let _ = conn.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    pub async fn start(chromium: &std::path::Path, chromedriver: &std::path::Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,2600",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut driver = Driver {
            child,
            base,
            http,
            session: String::new(),
            _profile: profile,
        };
        let created = driver.call(Method::POST, "/session", Some(caps)).await;
        driver.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        driver
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("WebDriver request");
        let value: Value = resp.json().await.expect("WebDriver JSON");
        if value["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", value["value"]);
        }
        value["value"].clone()
    }

    pub fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, &self.s("/url"), Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(Method::GET, &self.s("/url"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            Method::POST,
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
        .collect()
    }

    /// The elements matching `css` once at least one is there: a click that submits a form
    /// returns before the next page is guaranteed to be in the DOM. Bounded to 10 s.
    pub async fn wait_for(&self, css: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.find_all(css).await;
            if !all.is_empty() || std::time::Instant::now() > deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The current URL once it ends with `suffix` (a submitted form navigates after the click
    /// returns), or the last one seen after 10 s.
    pub async fn wait_for_url(&self, suffix: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url().await;
            if url.ends_with(suffix) || std::time::Instant::now() > deadline {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        assert!(!all.is_empty(), "no element {css}");
        all[0].clone()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> String {
        self.call(
            Method::GET,
            &self.s(&format!("/element/{element}/attribute/{name}")),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub async fn text(&self, element: &str) -> String {
        self.call(
            Method::GET,
            &self.s(&format!("/element/{element}/text")),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &self.s(&format!("/element/{e}/clear")),
            Some(json!({})),
        )
        .await;
        self.call(
            Method::POST,
            &self.s(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &self.s(&format!("/element/{e}/click")),
            Some(json!({})),
        )
        .await;
    }

    pub async fn source(&self) -> String {
        self.call(Method::GET, &self.s("/source"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.call(
            Method::POST,
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Resizes the window so the page's viewport is `width` CSS pixels wide, and returns the
    /// width the page then has.
    pub async fn set_viewport_width(&self, width: i64) -> i64 {
        let inner = self
            .script("return window.innerWidth;")
            .await
            .as_i64()
            .unwrap();
        let outer = self
            .script("return window.outerWidth;")
            .await
            .as_i64()
            .unwrap();
        self.call(
            Method::POST,
            &self.s("/window/rect"),
            Some(json!({"width": width + (outer - inner).max(0), "height": 900})),
        )
        .await;
        self.script("return window.innerWidth;")
            .await
            .as_i64()
            .unwrap()
    }

    /// How many CSS pixels the page is wider than its viewport (0: no horizontal scrolling).
    pub async fn horizontal_overflow(&self) -> i64 {
        self.script(
            "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) \
             - document.documentElement.clientWidth;",
        )
        .await
        .as_i64()
        .unwrap()
    }

    /// Opens `url` (a page under `/console` or `/reports`), is sent to the login form, logs
    /// in there as `user` and is brought back to the page.
    pub async fn login_through_form(&self, url: &str, path: &str, user: &str, password: &str) {
        self.goto(url).await;
        let here = self
            .wait_for_url(&format!("next=%2F{}", &path[1..].replace('/', "%2F")))
            .await;
        assert!(here.contains("/reports/login?next="), "{here}");
        self.type_into("#user", user).await;
        self.type_into("#password", password).await;
        self.click("#login").await;
        let back = self.wait_for_url(path).await;
        assert!(back.ends_with(path), "{back}");
    }

    /// `data-value`s of a column of a report table, as the browser's DOM has them.
    pub async fn column(&self, report: &str, column: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self
            .find_all(&format!(
                "table[data-report=\"{report}\"] tbody td[data-col=\"{column}\"]"
            ))
            .await
        {
            out.push(self.attribute(&e, "data-value").await);
        }
        out
    }

    /// Saves a screenshot as `target/report-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.screenshot_in("report-screenshots", name).await
    }

    /// Saves a screenshot as `target/DIR/NAME.png`.
    pub async fn screenshot_in(&self, dir: &str, name: &str) -> PathBuf {
        let b64 = self.call(Method::GET, &self.s("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = workspace_root().join("target").join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}
