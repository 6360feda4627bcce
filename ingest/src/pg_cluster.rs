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
        let bin = server_binaries()?;
        remove_stale_directories();
        let root = std::env::temp_dir().join(format!("boltstream-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {root:?}: {e}"))?;
        let owner = as_postgres_user();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .map_err(|e| format!("cannot chown {root:?}: {e}"))?;
        }
        let data = root.join("data");
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
            .arg(&data)
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
        let port = free_port()?;
        let log = std::fs::File::create(root.join("server.log"))
            .map_err(|e| format!("cannot create the server log: {e}"))?;
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&root)
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
        run_as(&mut server, owner, true);
        // The server is spawned from a thread that lives as long as it does: the parent-death
        // signal fires when the spawning thread ends, and test threads end after each test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || match server.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(()));
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start postgres: {e}")));
                }
            })
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())??;
        let cluster = Cluster { port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls) {
                Ok(_) => return Ok(cluster),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => {
                    let log = std::fs::read_to_string(root.join("server.log")).unwrap_or_default();
                    return Err(format!("the test postgres did not come up: {e}\n{log}"));
                }
            }
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
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
