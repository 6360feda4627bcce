//! A real `nats-server` (Debian's, installed by the test command) on a free loopback port; killed
//! on drop.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, out_dir, require_tool, wait_for};

/// A running NATS server.
pub struct Nats {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
}

impl Nats {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Self {
        require_tool("nats-server");
        let port = free_port();
        let log = out_dir()
            .join("logs")
            .join(format!("nats-{}-{port}.log", std::process::id()));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let child = Command::new("nats-server")
            .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn nats-server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let nats = Self { child, addr };
        let up = wait_for(Duration::from_secs(10), || TcpStream::connect(addr).ok());
        assert!(
            up.is_some(),
            "nats-server did not start: see {}",
            log.display()
        );
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
