//! A minimal W3C WebDriver client over reqwest, enough to drive Debian's
//! chromedriver: sessions, navigation, finding, clicking, typing, reading
//! and screenshots. (A WebDriver crate would pull a second HTTP stack into
//! the build for a dozen JSON calls.)

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver, killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts `chromedriver` on a free loopback port and waits until it
    /// reports ready. chromedriver cannot take a pre-bound socket, so the
    /// port is found by binding port 0 and releasing it.
    pub async fn start(chromedriver: &str) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()
                .and_then(|r| r.status().is_success().then_some(()))
                .is_some();
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A headless Chromium session with the flags this machine needs
    /// (no background networking: the network is closed).
    pub async fn session(&self, chromium: &str, profile_dir: &std::path::Path) -> Browser {
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1366,1000",
                        format!("--user-data-dir={}", profile_dir.display()),
                    ]
                }
            }}
        });
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(caps),
        )
        .await;
        let id = v["sessionId"].as_str().expect("a session id").to_owned();
        Browser {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.base),
        }
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    } else if method == reqwest::Method::POST {
        req = req.json(&json!({}));
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("webdriver {url}: {e}"));
    let status = res.status();
    let v: Value = res.json().await.expect("webdriver answers JSON");
    assert!(
        status.is_success(),
        "webdriver {method} {url}: {status} {v}"
    );
    v["value"].clone()
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
}

/// An element handle.
pub struct Element(String);

impl Browser {
    async fn post(&self, path: &str, body: Value) -> Value {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            None,
        )
        .await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.post(
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )
        .await
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
    }

    pub async fn find(&self, css: &str) -> Element {
        self.find_all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the link whose visible text is exactly `text`.
    pub async fn click_link(&self, text: &str) {
        let v = self
            .post("/element", json!({ "using": "link text", "value": text }))
            .await;
        let id = v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no link {text:?}"))
            .to_owned();
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Polls until `css`'s text satisfies `done` (operation pages refresh
    /// themselves every two seconds), returning the final text.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                let t = self
                    .get(&format!("/element/{}/text", e.0))
                    .await
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if done(&t) {
                    return t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} never reached the expected text"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Polls until the current URL satisfies `done` (a click that submits a
    /// form may return before the navigation it starts has finished).
    pub async fn wait_url(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.url().await;
            if done(&url)
                && self
                    .get("/title")
                    .await
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            {
                return url;
            }
            assert!(Instant::now() < deadline, "the browser stayed on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses and releases one key (WebDriver key codes, e.g. `\u{E004}` Tab).
    pub async fn press(&self, key: &str) {
        self.post(
            "/actions",
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
                { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }
            ]}]}),
        )
        .await;
        call(
            &self.http,
            reqwest::Method::DELETE,
            &format!("{}/actions", self.base),
            None,
        )
        .await;
    }

    /// The visible text of the element that has keyboard focus.
    pub async fn focused_text(&self) -> String {
        let v = self.get("/element/active").await;
        let id = v[ELEMENT_KEY].as_str().unwrap_or_default().to_owned();
        self.get(&format!("/element/{id}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("screenshot is base64")
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    pub async fn quit(self) {
        call(&self.http, reqwest::Method::DELETE, &self.base, None).await;
    }
}
