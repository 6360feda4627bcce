//! The `boltstream` binary: parses the command line and hands over to the library. `anyhow` lives
//! only here, at the edge, where an error becomes one line on stderr and a non-zero exit.

use std::process::ExitCode;

use boltstream_ingest::cli::{run_command, Cli, Command};
use boltstream_ingest::server::RunningServer;
use boltstream_ingest::shutdown;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(settings),
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

fn serve(settings: boltstream_ingest::config::Settings) -> anyhow::Result<()> {
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
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = RunningServer::start(settings).await?;
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
