//! The peer stack: nginx + nginx-rtmp-module with the original design's `on_publish` callback
//! app, started with its own prefix and config (never the system one), for side-by-side runs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boltstream_tests::{free_port, out_dir, wait_for};

/// The callback app of the original design (the Django `start_stream`/`stop_stream` views):
/// `on_publish` gets the key as `name` and answers a redirect to the username, or 403.
pub struct CallbackApp {
    /// Where nginx calls it.
    pub addr: SocketAddr,
    /// Stream key to username.
    pub keys: Arc<Mutex<HashMap<String, String>>>,
}

impl CallbackApp {
    /// Starts the app on a loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let keys: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let table = Arc::clone(&keys);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let table = Arc::clone(&table);
                std::thread::spawn(move || answer(stream, &table));
            }
        });
        Self { addr, keys }
    }
}

fn answer(mut stream: std::net::TcpStream, keys: &Mutex<HashMap<String, String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the head and a form body of Content-Length bytes.
    loop {
        let Ok(n) = stream.read(&mut chunk) else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let response = if head.starts_with("POST /start") {
        let name = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("name="))
            .unwrap_or("");
        match keys.lock().unwrap().get(name) {
            Some(user) => format!("HTTP/1.1 302 Found\r\nLocation: {user}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            None => "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
        }
    } else {
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    };
    let _ = stream.write_all(response.as_bytes());
}

/// nginx + nginx-rtmp with its own prefix and config, never the system one.
pub struct Nginx {
    /// The master process.
    pub child: Child,
    /// The RTMP listener.
    pub rtmp: SocketAddr,
    /// The HTTP listener (HLS under `/live/`, and `html/` at `/`).
    pub http: SocketAddr,
    /// The publish callback app.
    pub app: CallbackApp,
    /// Keys handed out so far.
    pub next_key: usize,
}

impl Nginx {
    /// A user for the callback app; returns their stream key.
    pub fn add_user(&mut self, user: &str) -> String {
        self.next_key += 1;
        let key = format!("key{:04}x{}", self.next_key, user.len());
        self.app
            .keys
            .lock()
            .unwrap()
            .insert(key.clone(), user.to_string());
        key
    }

    /// The directory nginx serves at `/`.
    pub fn html_dir() -> std::path::PathBuf {
        out_dir().join("bench/nginx/html")
    }

    /// Long because the peer's whole nginx.conf is written out here, where it is read.
    pub fn start(target_s: u64) -> Self {
        let app = CallbackApp::start();
        let prefix = out_dir().join("bench/nginx");
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(prefix.join("hls")).unwrap();
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        std::fs::create_dir_all(prefix.join("html")).unwrap();
        let (rtmp, http) = (free_port(), free_port());
        let module = [
            "/usr/lib/nginx/modules/ngx_rtmp_module.so",
            "/usr/share/nginx/modules/ngx_rtmp_module.so",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("libnginx-mod-rtmp is installed (bench/run installs it)");
        let conf = format!(
            r#"load_module {module};
daemon off;
master_process on;
worker_processes 1;
error_log {p}/logs/error.log warn;
pid {p}/nginx.pid;
events {{ worker_connections 4096; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp};
    chunk_size 4096;
    application app {{
      live on;
      deny play all;
      on_publish http://{cb}/start;
      on_publish_done http://{cb}/stop;
      push rtmp://127.0.0.1:{rtmp}/hls;
    }}
    application hls {{
      live on;
      allow publish 127.0.0.1;
      deny publish all;
      deny play all;
      hls on;
      hls_path {p}/hls;
      hls_nested on;
      hls_fragment {target_s}s;
      hls_playlist_length {pl}s;
      hls_fragment_naming system;
    }}
  }}
}}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{http};
    location / {{
      root {p}/html;
    }}
    location /live/ {{
      alias {p}/hls/;
      types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
      add_header Cache-Control no-cache;
    }}
  }}
}}
"#,
            p = prefix.display(),
            cb = app.addr,
            pl = target_s * 6,
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Self {
            child,
            rtmp: format!("127.0.0.1:{rtmp}").parse().unwrap(),
            http: format!("127.0.0.1:{http}").parse().unwrap(),
            app,
            next_key: 0,
        };
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(
                nginx.rtmp
            )
            .ok())
            .is_some(),
            "nginx did not start"
        );
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        if wait_for(Duration::from_secs(5), || {
            self.child.try_wait().ok().flatten()
        })
        .is_none()
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
