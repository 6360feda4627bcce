//! A `boltstream serve` child process on loopback ports chosen by the OS (reported in its ready
//! file), with its own data directory; its log goes to `target/e2e/logs/`, and both are scanned for
//! secrets when it is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::{out_dir, wait_for, workspace};

/// The `boltstream` binary under test.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("BOLTSTREAM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join("debug").join("boltstream"));
    assert!(
        path.exists(),
        "{} is missing: build it first (./scripts/test does)",
        path.display()
    );
    path
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// RTMP address.
    pub rtmp: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// The internal endpoints' address (health, metrics).
    pub internal: SocketAddr,
    log: PathBuf,
    extra: Vec<String>,
    log_filter: String,
}

/// Tests read the ingest's debug lines (each HTTP request, each publish step).
const TEST_LOG: &str = "info,boltstream_ingest=debug";

impl Server {
    /// Starts a server with a fresh data directory and `extra` flags.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_logging(extra, TEST_LOG)
    }

    /// Like [`Self::start`], logging at `filter` (`BOLTSTREAM_LOG`): benchmarks run the server as
    /// an operator would, without a line per request.
    pub fn start_logging(extra: &[&str], filter: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("boltstream-e2e-")
            .tempdir()
            .unwrap();
        let data = dir.path().to_path_buf();
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // The suites written against the MPEG-TS output (segment names, ffprobe of `.ts` files)
        // ask for it; low-latency tests pass `--hls-format cmaf`, the shipped default.
        if !extra.iter().any(|a| a == "--hls-format") {
            extra.extend(["--hls-format".to_string(), "ts".to_string()]);
        }
        let mut server = Self::spawn(data, extra, None, filter.to_string());
        server._dir = Some(dir);
        server
    }

    /// Starts a server on the data directory `data` (the caller's to clean up: a mounted
    /// filesystem, for instance), with `extra` flags.
    pub fn start_in(data: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn(data.to_path_buf(), extra, None, TEST_LOG.to_string())
    }

    /// Starts one node of a multi-node site: its listeners on `ip` (127.0.0.2, 127.0.0.3 …),
    /// the shared PostgreSQL `database`, the node id `id`, and `extra` flags (CMAF, the shipped
    /// default, unless they say otherwise). The CLI of this server uses the same database.
    pub fn start_node(ip: &str, id: &str, database: &str, extra: &[&str]) -> Self {
        Self::start_node_logging(ip, id, database, extra, TEST_LOG)
    }

    /// Like [`Self::start_node`], logging at `filter` (benchmarks log as an operator would).
    pub fn start_node_logging(
        ip: &str,
        id: &str,
        database: &str,
        extra: &[&str],
        filter: &str,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("boltstream-e2e-")
            .tempdir()
            .unwrap();
        let mut args: Vec<String> = ["--database", database, "--node-id", id]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let any: SocketAddr = format!("{ip}:0").parse().unwrap();
        let mut server = Self::spawn(
            dir.path().to_path_buf(),
            args,
            Some((any, any, any)),
            filter.to_string(),
        );
        server._dir = Some(dir);
        server
    }

    /// The flags the operator CLI needs to reach this server's database.
    fn database_args(&self) -> Vec<&str> {
        let at = self.extra.iter().position(|a| a == "--database");
        at.and_then(|i| self.extra.get(i + 1))
            .map_or_else(Vec::new, |url| vec!["--database", url.as_str()])
    }

    /// Kills the process at once (SIGKILL), as a crashed machine would stop; the data directory
    /// stays until the server is dropped.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the binary and waits for its ready file.
    fn spawn(
        data: PathBuf,
        extra: Vec<String>,
        ports: Option<(SocketAddr, SocketAddr, SocketAddr)>,
        log_filter: String,
    ) -> Self {
        let log =
            out_dir()
                .join("logs")
                .join(format!("server-{}-{}.log", std::process::id(), unique()));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let any = "127.0.0.1:0".to_string();
        let (rtmp, http, internal) = ports.map_or((any.clone(), any.clone(), any), |(r, h, i)| {
            (r.to_string(), h.to_string(), i.to_string())
        });
        // Beside the data directory, so the data directory holds only what the server writes.
        let ready = data.with_extension("ready.json");
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(binary())
            .arg("--data")
            .arg(&data)
            .args(["--rtmp-listen", &rtmp, "--http-listen", &http])
            .args(["--internal-listen", &internal])
            .args(&extra)
            .arg("serve")
            .arg("--ready-file")
            .arg(&ready)
            .env("BOLTSTREAM_LOG", &log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn boltstream");
        let mut server = Self {
            child: Some(child),
            data,
            _dir: None,
            rtmp: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
            internal: "0.0.0.0:0".parse().unwrap(),
            log,
            extra,
            log_filter,
        };
        let Some((rtmp, http, internal)) = wait_ready(&ready) else {
            let status = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            panic!(
                "boltstream did not start (exit: {status:?}):\n{}",
                server.log()
            );
        };
        server.rtmp = rtmp;
        server.http = http;
        server.internal = internal;
        server
    }

    /// Restarts on the same data directory and addresses with other flags (the output format
    /// stays as it was unless `extra` names one).
    pub fn restart_with(&mut self, extra: &[&str]) {
        let format = self.extra.iter().position(|a| a == "--hls-format");
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let (Some(i), false) = (format, args.iter().any(|a| a == "--hls-format")) {
            args.extend(self.extra[i..i + 2].iter().cloned());
        }
        self.extra = args;
        self.restart();
    }

    /// Restarts on the same data directory and ports (after a kill).
    pub fn restart(&mut self) {
        let dir = self._dir.take();
        let mut next = Self::spawn(
            self.data.clone(),
            self.extra.clone(),
            Some((self.rtmp, self.http, self.internal)),
            self.log_filter.clone(),
        );
        next._dir = dir;
        std::mem::swap(self, &mut next);
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `boltstream --data <data> args...` (the operator CLI on the same database).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(binary())
            .arg("--data")
            .arg(&self.data)
            .args(self.database_args())
            .args(args)
            .output()
            .expect("run boltstream cli")
    }

    /// Runs the CLI with `input` on standard input.
    pub fn cli_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new(binary())
            .arg("--data")
            .arg(&self.data)
            .args(self.database_args())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run boltstream cli");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Gives `user` the password `"<user> password 1"` and signs in from loopback; returns the
    /// session cookie (`bs_session=…`).
    pub fn session(&self, user: &str) -> String {
        use crate::http::{log_in_from, set_cookie_value};
        let password = format!("{user} password 1");
        let out = self.cli_with_stdin(&["user", "password", user], &format!("{password}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let r = log_in_from(
            local,
            self.http,
            user,
            &password.replace(' ', "+"),
            None,
            &[],
        )
        .expect("log in");
        let token = set_cookie_value(&r, "bs_session").expect("signed in");
        format!("bs_session={token}")
    }

    /// [`Self::session`] and the CSRF token the user's dashboard carries.
    pub fn session_and_csrf(&self, user: &str) -> (String, String) {
        let cookie = self.session(user);
        let dash =
            crate::http::request(self.http, "GET", b"/dashboard", &[("cookie", &cookie)], b"")
                .expect("dashboard");
        let csrf = crate::http::csrf_field(&dash.text())
            .expect("a CSRF token")
            .to_string();
        (cookie, csrf)
    }

    /// Adds a user and returns its stream key.
    pub fn add_user(&self, name: &str) -> String {
        let out = self.cli(&["user", "add", name, "--json"]);
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = json["stream_key"].as_str().unwrap().to_string();
        assert!(boltstream_shared::key::is_well_formed(&key));
        key
    }

    /// Rotates a user's key and returns the new one.
    pub fn rotate_key(&self, name: &str) -> String {
        let out = self.cli(&["key", "rotate", name, "--json"]);
        assert!(
            out.status.success(),
            "key rotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["stream_key"].as_str().unwrap().to_string()
    }

    /// `rtmp://.../app/<key>`.
    pub fn publish_url(&self, key: &str) -> String {
        format!("rtmp://{}/app/{key}", self.rtmp)
    }

    /// The usernames `boltstream streams` lists as live.
    pub fn live_users(&self) -> Vec<String> {
        let out = self.cli(&["streams", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json["streams"].as_array().unwrap().iter())
            .map(|s| s["user"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits up to `within` for `user` to be live (per `boltstream streams`).
    pub fn wait_live(&self, user: &str, within: Duration) -> bool {
        wait_for(within, || {
            self.live_users().iter().any(|u| u == user).then_some(())
        })
        .is_some()
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the server to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        wait_for(timeout, || child.try_wait().ok().flatten())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Server {
    /// Stops the server, then scans what it wrote — every log line, and every file under the data
    /// directory but the database — for a stream key or a near miss of one: every test that
    /// starts a server is also a secret scan of what it made the server do, whatever order the
    /// tests run in.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            return;
        }
        if let Some(leak) = self.secret_leak() {
            panic!("{leak}");
        }
    }
}

/// True when `text` holds something shaped like a playback token (`<digits>.<digit>.<43
/// base64url characters>`): tokens are bearer secrets, so none may appear in a log or a file.
pub fn contains_token_like(text: &[u8]) -> bool {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    (0..text.len()).any(|i| {
        // `.<digit>.` after a digit, then 43 base64url characters.
        i >= 1
            && text[i - 1].is_ascii_digit()
            && text.get(i) == Some(&b'.')
            && text.get(i + 1).is_some_and(u8::is_ascii_digit)
            && text.get(i + 2) == Some(&b'.')
            && text.len() >= i + 3 + 43
            && text[i + 3..i + 3 + 43].iter().all(|&c| b64(c))
    })
}

impl Server {
    /// The edge filter's `playback_secrets`, as the CLI prints them for this server.
    pub fn filter_secrets(&self) -> serde_json::Value {
        let out = self.cli(&["playback-secret", "filter-config"]);
        assert!(out.status.success(), "playback-secret filter-config failed");
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        config["playback_secrets"].clone()
    }

    /// A playback token for `user`'s private channel valid for `ttl_s`, signed with the site's
    /// current secret, as the origin signs one; as a `bs_play=…` cookie.
    pub fn playback_cookie(&self, user: &str, ttl_s: i64) -> String {
        let secrets = self.filter_secrets();
        let hex = secrets[0]["secret"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let secret =
            boltstream_shared::token::Secret::new(secrets[0]["id"].as_u64().unwrap() as u8, &bytes)
                .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let expires = (now + ttl_s).max(0) as u64;
        let scope = boltstream_shared::token::scope(user);
        format!(
            "bs_play={}",
            boltstream_shared::token::sign(&secret, &scope, expires)
        )
    }

    /// The playback-token signing secrets in this server's database (as the filter config
    /// spells them, hex), for the secret scan.
    pub fn playback_secrets(&self) -> Vec<String> {
        let Ok(db) = rusqlite::Connection::open_with_flags(
            self.data.join("boltstream.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            return Vec::new();
        };
        let Ok(mut stmt) = db.prepare("SELECT secret FROM playback_secrets") else {
            return Vec::new(); // an older schema: none
        };
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0));
        rows.map(|rows| {
            rows.filter_map(Result::ok)
                .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
                .collect()
        })
        .unwrap_or_default()
    }

    /// Where `secret` (raw, or spelled in lower- or upper-case hex) appears in the log or in a
    /// file of the data directory other than the database, if anywhere: for media keys, which
    /// only the test that fetched one knows.
    pub fn leaks(&self, secret: &[u8]) -> Option<String> {
        let hex: String = secret.iter().map(|x| format!("{x:02x}")).collect();
        let needles = [
            secret.to_vec(),
            hex.clone().into_bytes(),
            hex.to_uppercase().into_bytes(),
        ];
        let found = |hay: &[u8]| {
            needles
                .iter()
                .any(|n| !n.is_empty() && hay.windows(n.len()).any(|w| w == &n[..]))
        };
        if found(&std::fs::read(&self.log).unwrap_or_default()) {
            return Some(format!("{}: a secret is in the log", self.log.display()));
        }
        let mut files = Vec::new();
        collect_files(&self.data, &mut files);
        (files.iter())
            .filter(|p| !is_database(p))
            .find(|p| found(&std::fs::read(p).unwrap_or_default()))
            .map(|p| format!("{} holds a secret", p.display()))
    }

    /// Where a key (or a near miss), a playback token or a signing secret appears in the log or
    /// the data directory, if anywhere.
    pub fn secret_leak(&self) -> Option<String> {
        if let Some(line) = (std::fs::read(&self.log).unwrap_or_default())
            .split(|b| *b == b'\n')
            .find(|l| contains_token_like(l))
        {
            return Some(format!(
                "{}: a log line carries a playback token: {}",
                self.log.display(),
                String::from_utf8_lossy(line)
            ));
        }
        for secret in self.playback_secrets() {
            let bytes: Vec<u8> = (0..secret.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&secret[i..i + 2], 16).ok())
                .collect();
            if let Some(leak) = self.leaks(&bytes) {
                return Some(format!("a playback signing secret: {leak}"));
            }
        }
        self.stream_key_leak()
    }

    fn stream_key_leak(&self) -> Option<String> {
        use boltstream_shared::key::contains_key_like;
        let log = std::fs::read(&self.log).unwrap_or_default();
        if let Some(line) = log.split(|b| *b == b'\n').find(|l| contains_key_like(l)) {
            return Some(format!(
                "{}: a log line carries a stream key or a near miss of one: {}",
                self.log.display(),
                String::from_utf8_lossy(line)
            ));
        }
        let mut files = Vec::new();
        collect_files(&self.data, &mut files);
        files
            .iter()
            .filter(|p| !is_database(p))
            .find(|p| contains_key_like(&without_jpeg_tables(std::fs::read(p).unwrap_or_default())))
            .map(|p| format!("{} carries a stream key or a near miss of one", p.display()))
    }
}

/// The standard JPEG Huffman table for AC coefficients (ITU T.81 K.3) lists symbol values that
/// happen to spell a 32-character mixed-case ASCII run — the shape of a near-missed stream key —
/// in every JPEG that uses it (every thumbnail). Blanked before a file is scanned.
fn without_jpeg_tables(mut bytes: Vec<u8>) -> Vec<u8> {
    const RUN: &[u8] = b"CDEFGHIJSTUVWXYZcdefghijstuvwxyz";
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(RUN.len()).position(|w| w == RUN) {
        let start = i + at;
        bytes[start..start + RUN.len()].fill(0);
        i = start + RUN.len();
    }
    bytes
}

/// The database and its WAL files: the one place secrets are kept (hashed, or as signing secrets).
fn is_database(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("boltstream.db"))
}

/// Every file below `dir`.
pub fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The bound addresses (RTMP, HTTP, internal) from a server's ready file, once it is written.
fn wait_ready(ready: &Path) -> Option<(SocketAddr, SocketAddr, SocketAddr)> {
    wait_for(Duration::from_secs(15), || {
        let text = std::fs::read_to_string(ready).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let field = |name: &str| json[name].as_str()?.parse::<SocketAddr>().ok();
        Some((field("rtmp")?, field("http")?, field("internal")?))
    })
}

#[cfg(test)]
mod tests {
    use super::contains_token_like;

    #[test]
    fn token_shapes_are_found_and_ordinary_text_is_not() {
        let secret = boltstream_shared::token::Secret::new(3, &[9; 32]).unwrap();
        let token = boltstream_shared::token::sign(&secret, "/private/alice/", 1_796_000_000);
        assert!(contains_token_like(
            format!("x cookie={token}; y").as_bytes()
        ));
        assert!(!contains_token_like(
            b"GET /private/alice/1764140000123.2.m4s HTTP/1.1"
        ));
        assert!(!contains_token_like(b"version 1.2.3 and 10.0.0.1"));
    }
}
