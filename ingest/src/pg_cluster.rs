//! A throwaway PostgreSQL server for tests: the real Debian server, on loopback and a free port, in
//! a fresh temporary directory, gone when the test process ends. The store's tests run against it
//! as well as SQLite, and the multi-node tests share one database between nodes through it.
//!
//! `initdb` and `postgres` refuse to run as root, so as root both run as the `postgres` user. The
//! server gets the parent-death signal, so a test process that dies or exits never leaves one
//! running; directories left by earlier runs are removed when the next one starts.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running cluster: where to reach it.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
}

/// The process's one cluster, started on first use.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("{e}")))
}

impl Cluster {
    /// A new, empty database on this cluster; its `postgres://` URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://boltstream@127.0.0.1:{}/{name}", self.port)
    }

    fn start() -> Result<Self, String> {
        remove_stale_directories();
        let root = std::env::temp_dir().join(format!("boltstream-pg-{}", std::process::id()));
        let server = Server::init(root)?;
        // Spawned from a thread that lives as long as the server: the parent-death signal fires
        // when the spawning thread ends, and test threads end after each test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || match server.command().spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(server.port));
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start postgres: {e}")));
                }
            })
            .map_err(|e| e.to_string())?;
        let port = rx.recv().map_err(|e| e.to_string())??;
        let cluster = Cluster { port };
        wait_up(&cluster.url("postgres"))?;
        Ok(cluster)
    }
}

/// A cluster of one test's own, which the test may stop and start again (a database outage);
/// stopped when dropped. Started from the test's thread, which outlives it.
pub struct Owned {
    server: Server,
    child: Option<std::process::Child>,
}

impl Owned {
    /// Initialises and starts one.
    pub fn start() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "boltstream-pg-{}-own{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let server = Server::init(root).unwrap_or_else(|e| panic!("{e}"));
        let mut owned = Owned {
            server,
            child: None,
        };
        owned.resume();
        owned
    }

    /// The URL of its database `postgres` (the tests need no other).
    pub fn url(&self) -> String {
        format!(
            "postgres://boltstream@127.0.0.1:{}/postgres",
            self.server.port
        )
    }

    /// Stops the server at once (PostgreSQL's immediate shutdown, as a crash or a cut network
    /// looks to its clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::QUIT,
            );
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn resume(&mut self) {
        let child = self.server.command().spawn().expect("start postgres");
        self.child = Some(child);
        wait_up(&self.url()).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.server.root);
    }
}

/// An initialised cluster directory and how to run its server.
struct Server {
    root: PathBuf,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    port: u16,
}

impl Server {
    /// `initdb` in `root` (made afresh), on a free port.
    fn init(root: PathBuf) -> Result<Self, String> {
        let bin = server_binaries()?;
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {root:?}: {e}"))?;
        let owner = as_postgres_user();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .map_err(|e| format!("cannot chown {root:?}: {e}"))?;
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "boltstream",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg("-D")
            .arg(root.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        run_as(&mut initdb, owner, false);
        let out = initdb
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Server {
            root,
            bin,
            owner,
            port: free_port()?,
        })
    }

    /// The server's command line; its log goes to `server.log` in the cluster's directory.
    fn command(&self) -> Command {
        let mut server = Command::new(self.bin.join("postgres"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("server.log"))
            .map_or_else(|_| Stdio::null(), Stdio::from);
        server
            .arg("-D")
            .arg(self.root.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.root)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ])
            .stdout(Stdio::null())
            .stderr(log);
        run_as(&mut server, self.owner, true);
        server
    }
}

/// Waits up to 30 s until `url` accepts a connection.
fn wait_up(url: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match postgres::Client::connect(url, postgres::NoTls) {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("the test postgres did not come up: {e}")),
        }
    }
}

/// Debian's server binaries (package `postgresql`, which `scripts/deps` installs).
fn server_binaries() -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().ok_or_else(|| {
        "PostgreSQL's server is not installed (apt-get install postgresql; scripts/deps does it)"
            .to_string()
    })
}

/// `postgres`'s uid and gid when this process is root, as `initdb` refuses root.
fn as_postgres_user() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
            _ => None,
        }
    });
    Some(ids.expect("running as root and there is no postgres user to run the test server as"))
}

#[allow(unsafe_code)]
fn run_as(cmd: &mut Command, owner: Option<(u32, u32)>, die_with_parent: bool) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    if die_with_parent {
        // SAFETY: one prctl, async-signal-safe; it runs in the child after the uid change (which
        // would clear the parent-death signal had it come first).
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::INT,
                ))?;
                Ok(())
            });
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Clusters of test processes that are gone (killed before their server could be told).
fn remove_stale_directories() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = (name.to_str())
            .and_then(|n| n.strip_prefix("boltstream-pg-"))
            .and_then(|p| p.split('-').next()?.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
