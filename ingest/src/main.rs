//! The `boltstream` binary: parses the command line and hands over to the library. `anyhow` lives
//! only here, at the edge, where an error becomes one line on stderr and a non-zero exit.

use std::process::ExitCode;

use boltstream_ingest::cli::{run_command, Cli, Command};
use boltstream_ingest::server::RunningServer;
use boltstream_ingest::shutdown;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    return_large_buffers_to_the_system();
    raise_open_file_limit();
    let cli = Cli::parse_args();
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { ref ready_file } => serve(settings, ready_file.clone()),
        ref command => run_command(&settings, command, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    settings: boltstream_ingest::config::Settings,
    ready_file: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BOLTSTREAM_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    install_panic_logger();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = RunningServer::start(settings).await?;
        if let Some(path) = ready_file {
            server.write_ready_file(&path)?;
        }
        tokio::spawn(shutdown::on_signal(server.shutdown_token()));
        server.run_until_stopped().await
    })
}

/// Panics inside a connection task (rml_rtmp's deserializer) are contained per connection; this
/// routes their message through tracing instead of raw stderr.
fn install_panic_logger() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %location, "panic: {}", panic_message(info));
    }));
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown".to_string()
    }
}

/// Segments are large, short-lived buffers. glibc serves those from `mmap` at first, then raises
/// its threshold each time one is freed until they come from the arenas, where freed segments
/// stay as fragmented, resident heap: a server with 100 streams sat on twice the memory it used.
/// Fixing the threshold (which also turns off the adaptation) returns every freed segment to the
/// system at once. jemalloc and mimalloc were tried instead and kept more (BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_large_buffers_to_the_system() {
    const THRESHOLD: libc::c_int = 64 * 1024;
    // SAFETY: mallopt only sets allocator parameters; it is called once, before any thread
    // exists, with a valid parameter and value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_to_the_system() {}

/// Every connection — a publisher, a viewer, a low-latency request held open — is a file
/// descriptor, and many systems start processes with a soft limit of 1024, below the default caps
/// (`max_http_connections` 4096, `max_rtmp_connections` 1000). The soft limit is raised to the
/// hard one, as Go's runtime does for every program; the hard limit stays the operator's.
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct passed, which is valid.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() {}
