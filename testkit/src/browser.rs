//! A headless Chromium driven through chromedriver's W3C WebDriver protocol. The protocol is
//! a handful of JSON calls, so this speaks it over reqwest (already a dependency) rather than
//! pulling a WebDriver crate and its tree into every test build.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The W3C key for a WebDriver element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session. On drop (also when the test panics) the session is quit, which closes
/// Chromium, and then chromedriver's whole process group is killed, so that no browser
/// outlives its test; its folder (the profile, and every temp file of chromedriver and
/// Chromium, whose TMPDIR it is) goes with it.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    base: String,
    http: reqwest::Client,
    _scratch: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await, so the WebDriver "delete session" call is made over a plain socket.
        let _ = quit_session(self.port, &self.session);
        crate::process::kill_group(&mut self.driver);
    }
}

/// `DELETE /session/{id}`: chromedriver closes the browser and removes its temp files.
fn quit_session(port: u16, session: &str) -> std::io::Result<()> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // Chromedriver answers once the browser is gone; the first bytes of the answer are enough
    // (it may keep the connection open, so reading to the end would wait for the timeout).
    let mut answer = [0u8; 256];
    let _ = s.read(&mut answer)?;
    Ok(())
}

fn which(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed: run scripts/test.sh, which installs chromium and chromium-driver")
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium `width` px wide.
    pub async fn start(width: u32, height: u32) -> Self {
        let port = crate::process::free_port();
        // Chromedriver makes temp folders of its own and removes them after the browser is
        // gone, which a kill can cut short: its TMPDIR is this folder, removed on drop.
        let scratch = tempfile::tempdir().expect("browser scratch folder");
        let profile = scratch.path().join("profile");
        // Its own process group, so that killing the group takes every Chromium process too.
        let driver = Command::new(which(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .process_group(0)
            .env("TMPDIR", scratch.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = DriverGuard(Some(driver));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": which(&["chromium", "chromium-browser"]),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"),
                         format!("--user-data-dir={}", profile.display())],
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"))
            .to_string();
        Self {
            driver: driver.take(),
            port,
            base: format!("{base}/session/{session}"),
            session,
            http,
            _scratch: scratch,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    /// Opens a URL.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The element matching a CSS selector.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Clicks an element.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types into an element (`\u{E007}` is Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `script` returns true.
    pub async fn wait_for(&self, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.eval(script).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {script}\npage text: {}",
                self.eval("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the terms-of-use notice of a fresh browser and agrees to them, as a visitor
    /// does before the first message.
    pub async fn accept_terms(&self) {
        self.wait_for(
            "const b = document.querySelector('#terms-accept'); \
             return !!b && !b.disabled && !document.querySelector('#terms').hidden",
            Duration::from_secs(20),
        )
        .await;
        self.click("#terms-accept").await;
        self.wait_for(
            "return document.querySelector('#terms').hidden",
            Duration::from_secs(5),
        )
        .await;
    }

    /// A PNG screenshot of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}

/// Kills chromedriver's process group if the browser fails to start (a panic before `Browser`
/// exists and takes it over).
struct DriverGuard(Option<Child>);

impl DriverGuard {
    fn take(&mut self) -> Child {
        self.0.take().expect("driver taken once")
    }
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            crate::process::kill_group(child);
        }
    }
}
