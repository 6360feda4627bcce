//! Headless Chromium driven over WebDriver (Debian's `chromium` + `chromium-driver`). The protocol
//! is a handful of JSON calls, spoken here with the raw HTTP client rather than a full client crate.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::{require_tool, wait_for};

/// A browser session; the driver and browser are stopped on drop.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let r = crate::http::request(addr, method, path.as_bytes(), headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert!(
        r.status < 400,
        "webdriver {method} {path} -> {}: {v}",
        r.status
    );
    v["value"].clone()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`Self::start`], with more Chromium flags (`--ignore-certificate-errors` for an edge
    /// with the tests' throwaway certificate).
    pub fn start_with(extra: &[&str]) -> Self {
        require_tool("chromedriver");
        require_tool("chromium");
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let ready = wait_for(Duration::from_secs(20), || {
            crate::http::request(addr, "GET", b"/status", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
        });
        assert!(ready.is_some(), "chromedriver did not start");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,860",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } } } });
        let created = call(addr, "POST", "/session", Some(caps));
        let session = created["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Self {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    /// Navigates and waits for the load.
    pub fn goto(&self, url: &str) {
        call(
            self.addr,
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({ "url": url })),
        );
    }

    /// Signs in at `base` (e.g. `https://localhost:8443`) with the website's own form.
    pub fn sign_in(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/login"));
        self.eval(&format!(
            "var f = document.querySelector('form[action=\"/login\"]');
             f.querySelector('input[name=username]').value = '{user}';
             f.querySelector('input[name=password]').value = '{password}';
             f.submit(); return true;"
        ));
        let signed_in = wait_for(Duration::from_secs(10), || {
            let path = self.eval("return location.pathname");
            (path != "/login").then_some(path)
        });
        assert!(signed_in.is_some(), "{user} could not sign in");
    }

    /// Runs a synchronous script and returns its result.
    pub fn eval(&self, script: &str) -> Value {
        call(
            self.addr,
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Saves a PNG screenshot.
    pub fn screenshot(&self, path: &Path) {
        let b64 = call(
            self.addr,
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("base64 screenshot");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = crate::http::request(
            self.addr,
            "DELETE",
            format!("/session/{}", self.session).as_bytes(),
            &[],
            b"",
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
