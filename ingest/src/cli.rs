//! The `boltstream` command line: `serve`, and the operator commands that work on the same database
//! while a server runs (SQLite in WAL mode with a busy timeout makes that safe). Errors are one line
//! and a non-zero exit; a plain key is printed only by `user add` and `key rotate`, once.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::clock::now_ms;
use crate::config::{Options, Settings};
use crate::store::Store;
use boltstream_hls::date::format_date_time;

/// Boltstream: self-hosted live streaming. RTMP in, HLS out, one binary.
#[derive(Parser, Debug)]
#[command(name = "boltstream", version, propagate_version = true)]
pub struct Cli {
    /// TOML file with any of the options below (flags and environment variables win over it)
    #[arg(long, global = true, env = "BOLTSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Options.
    #[command(flatten)]
    pub options: Options,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: RTMP ingest, HLS packaging, HTTP origin, website and API
    Serve,
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage stream keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// List live streams: username, since, codecs, bitrate
    Streams,
}

/// `boltstream user ...`
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user and print its stream key (shown only this once)
    Add {
        /// Username: 3-25 of a-z, 0-9, _
        name: String,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
    },
    /// List users
    List,
    /// Ban a user: their key stops working and a running server drops their live stream
    Ban {
        /// Username
        name: String,
    },
    /// Lift a ban
    Unban {
        /// Username
        name: String,
    },
    /// Set a user's website password, read from the first line of standard input
    Password {
        /// Username
        name: String,
    },
}

/// `boltstream key ...`
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Replace a user's stream key and print the new one (the old key stops working at once)
    Rotate {
        /// Username
        name: String,
    },
}

impl Cli {
    /// Resolved settings.
    pub fn settings(&self) -> Result<Settings, crate::config::ConfigError> {
        Settings::resolve(self.options.clone(), self.config.as_deref())
    }
}

/// Runs an operator command (everything but `serve`), writing to `out`.
pub fn run_command(
    settings: &Settings,
    command: &Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let open = || -> anyhow::Result<Store> {
        Store::create_data_dir(&settings.data)
            .with_context(|| format!("cannot create data directory {}", settings.data.display()))?;
        Ok(Store::open(&settings.database_path())?)
    };
    match command {
        Command::Serve => anyhow::bail!("serve is not an operator command"),
        Command::User(UserCommand::Add { name, admin }) => {
            let (user, key) = open()?.add_user(name, *admin)?;
            writeln!(
                out,
                "created user {user}{}",
                if *admin { " (admin)" } else { "" }
            )?;
            writeln!(
                out,
                "stream key (shown only now; store it in your encoder): {key}"
            )?;
            writeln!(
                out,
                "publish to: rtmp://<this host>:{}/{}/<stream key>",
                settings.rtmp_listen.port(),
                settings.rtmp_app
            )?;
        }
        Command::User(UserCommand::List) => {
            let users = open()?.list_users()?;
            writeln!(
                out,
                "{:<25} {:<6} {:<7} {:<24}",
                "USER", "ADMIN", "BANNED", "LIVE SINCE"
            )?;
            for u in users {
                let since = u
                    .live_since_ms
                    .map(format_date_time)
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{:<25} {:<6} {:<7} {:<24}",
                    u.username,
                    yes(u.is_admin),
                    yes(u.banned),
                    since
                )?;
            }
        }
        Command::User(UserCommand::Ban { name }) => {
            open()?.set_banned(name, true)?;
            writeln!(out, "banned {}", name.to_ascii_lowercase())?;
        }
        Command::User(UserCommand::Unban { name }) => {
            open()?.set_banned(name, false)?;
            writeln!(out, "unbanned {}", name.to_ascii_lowercase())?;
        }
        Command::User(UserCommand::Password { name }) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            open()?.set_password(name, line.trim_end_matches(['\r', '\n']))?;
            writeln!(out, "password set for {}", name.to_ascii_lowercase())?;
        }
        Command::Key(KeyCommand::Rotate { name }) => {
            let key = open()?.rotate_key(name)?;
            writeln!(
                out,
                "new stream key for {} (shown only now; the old key no longer works): {key}",
                name.to_ascii_lowercase()
            )?;
        }
        Command::Streams => {
            let streams = open()?.live_streams()?;
            if streams.is_empty() {
                writeln!(out, "no live streams")?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<25} {:<24} {:>8} {:<12} {:>10} {:>6}",
                "USER", "SINCE", "UPTIME", "CODECS", "RESOLUTION", "KBPS"
            )?;
            for s in streams {
                let codecs = [s.stats.video_codec.as_str(), s.stats.audio_codec.as_str()]
                    .iter()
                    .filter(|c| !c.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("+");
                let resolution = if s.stats.width > 0 {
                    format!("{}x{}", s.stats.width, s.stats.height)
                } else {
                    "-".into()
                };
                let uptime = (now_ms() - s.since_ms).max(0) / 1000;
                writeln!(
                    out,
                    "{:<25} {:<24} {:>8} {:<12} {:>10} {:>6}",
                    s.username,
                    format_date_time(s.since_ms),
                    format!(
                        "{}:{:02}:{:02}",
                        uptime / 3600,
                        uptime / 60 % 60,
                        uptime % 60
                    ),
                    if codecs.is_empty() {
                        "-".into()
                    } else {
                        codecs
                    },
                    resolution,
                    s.stats.bitrate_kbps
                )?;
            }
        }
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltstream_shared::key;

    fn settings(dir: &std::path::Path) -> Settings {
        Settings::resolve(
            Options {
                data: Some(dir.to_path_buf()),
                ..Options::default()
            },
            None,
        )
        .unwrap()
    }

    fn run(s: &Settings, args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["boltstream"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv)?;
        let mut out = Vec::new();
        run_command(s, &cli.command, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn user_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let added = run(&s, &["user", "add", "Alice", "--admin"]).unwrap();
        assert!(added.starts_with("created user alice (admin)\n"), "{added}");
        let key_line = added.lines().nth(1).unwrap();
        let key = key_line.rsplit(' ').next().unwrap();
        assert!(key::is_well_formed(key));
        let list = run(&s, &["user", "list"]).unwrap();
        assert!(list.contains("alice") && list.contains("yes"), "{list}");
        assert!(!list.contains(key), "keys are never listed");
        assert_eq!(
            run(&s, &["user", "ban", "alice"]).unwrap(),
            "banned alice\n"
        );
        assert_eq!(
            run(&s, &["user", "unban", "ALICE"]).unwrap(),
            "unbanned alice\n"
        );
        let rotated = run(&s, &["key", "rotate", "alice"]).unwrap();
        let new_key = rotated.trim().rsplit(' ').next().unwrap();
        assert!(key::is_well_formed(new_key) && new_key != key);
        assert_eq!(run(&s, &["streams"]).unwrap(), "no live streams\n");
    }

    #[test]
    fn errors_are_one_clear_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        run(&s, &["user", "add", "alice"]).unwrap();
        let cases = [
            (
                &["user", "add", "alice"][..],
                "the username \"alice\" is taken",
            ),
            (
                &["user", "add", "no"][..],
                "invalid username: a username has 3 to 25 characters",
            ),
            (
                &["user", "add", "admin"][..],
                "invalid username: that username is reserved",
            ),
            (&["user", "ban", "nobody"][..], "no user named \"nobody\""),
            (&["key", "rotate", "nobody"][..], "no user named \"nobody\""),
        ];
        for (args, want) in cases {
            let err = run(&s, args).unwrap_err();
            assert_eq!(format!("{err:#}"), want);
        }
        assert!(run(&s, &["user", "frobnicate"]).is_err());
    }

    #[test]
    fn streams_lists_live_ones_with_stats() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let store = Store::open(&s.database_path()).unwrap();
        let (_, key) = store.add_user("alice", false).unwrap();
        let (_, id) = store.begin_publish(&key).unwrap().unwrap();
        store
            .record_stats(
                id,
                &crate::store::StreamStats {
                    video_codec: "h264".into(),
                    audio_codec: "aac".into(),
                    width: 1280,
                    height: 720,
                    fps: 30.0,
                    bitrate_kbps: 2500,
                },
            )
            .unwrap();
        let out = run(&s, &["streams"]).unwrap();
        assert!(
            out.contains("alice")
                && out.contains("h264+aac")
                && out.contains("1280x720")
                && out.contains("2500"),
            "{out}"
        );
    }
}
