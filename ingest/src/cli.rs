//! The `boltstream` command line: `serve`, and the operator commands that work on the same database
//! while a server runs (SQLite in WAL mode with a busy timeout makes that safe). Errors are one line
//! and a non-zero exit; a plain key is printed only by `user add` and `key rotate`, once.

use boltstream_shared::username::Username;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::channel_info::ChannelInfo;
use serde_json::json;

use crate::clock::now_ms;
use crate::config::{Options, Settings};
use crate::ops::{self, ActionError, AdminAction};
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
    Serve {
        /// Once listening, write the bound addresses here as JSON ({"rtmp", "http", "internal"}),
        /// for supervisors and tests that let the OS choose the ports
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage stream keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// A channel's title and category
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Private channels: visibility, allowed users, share links
    #[command(subcommand)]
    Access(AccessCommand),
    /// The secrets playback tokens are signed with, and the edge filter's copy of them
    #[command(subcommand)]
    PlaybackSecret(PlaybackSecretCommand),
    /// Past broadcasts: list, delete, and whether a channel keeps them
    #[command(subcommand)]
    Recordings(RecordingsCommand),
    /// List live streams: username, since, codecs, bitrate
    Streams {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
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
        /// Print JSON ({"user", "stream_key"}) instead of text
        #[arg(long)]
        json: bool,
    },
    /// List users
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
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
        /// Print JSON ({"user", "stream_key"}) instead of text
        #[arg(long)]
        json: bool,
    },
}

/// `boltstream recordings ...`
#[derive(Subcommand, Debug)]
pub enum RecordingsCommand {
    /// A channel's finished recordings, newest first
    List {
        /// The channel
        name: String,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Delete a finished recording (its files and listing)
    Delete {
        /// The channel
        name: String,
        /// The recording's id (as listed)
        id: u64,
    },
    /// Whether a channel's publishes are recorded (from its next publish on)
    Keep {
        /// The channel
        name: String,
        /// `on` or `off`
        #[arg(value_parser = ["on", "off"])]
        keep: String,
    },
}

/// `boltstream access ...`
#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Make a channel private (only its streamer, allowed users, admins and share links watch,
    /// encrypted from its next publish) or public
    Set {
        /// Username
        name: String,
        /// `private` or `public`
        #[arg(value_parser = ["private", "public"])]
        visibility: String,
    },
    /// Allow a user to watch a private channel
    Allow {
        /// The channel
        name: String,
        /// The user allowed
        viewer: String,
    },
    /// Stop allowing a user (takes effect within a token's lifetime, 5 minutes)
    Disallow {
        /// The channel
        name: String,
        /// The user
        viewer: String,
    },
    /// Create a share link for a channel, valid for this many hours; prints its path (once)
    Share {
        /// The channel
        name: String,
        /// Hours it stays valid (at most 720)
        #[arg(long, default_value_t = 24)]
        hours: u32,
    },
    /// Revoke a share link by id
    Revoke {
        /// The channel
        name: String,
        /// The link's id
        id: i64,
    },
    /// Show a channel's visibility, allowed users and share links
    Show {
        /// The channel
        name: String,
    },
}

/// `boltstream playback-secret ...`
#[derive(Subcommand, Debug)]
pub enum PlaybackSecretCommand {
    /// Print the edge filter's `playback_secrets` configuration (JSON with the secrets: keep it
    /// as private as the database)
    FilterConfig,
    /// Make a new signing secret; the previous one stays accepted. Put the new filter
    /// configuration on every edge before the next rotation
    Rotate,
}

/// `boltstream channel ...`
#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Set a channel's title and category (both; an empty string clears one)
    Set {
        /// Username
        name: String,
        /// Title, at most 140 characters
        #[arg(long, default_value = "")]
        title: String,
        /// Category, at most 40 characters
        #[arg(long, default_value = "")]
        category: String,
    },
    /// Show a channel's title and category
    Show {
        /// Username
        name: String,
        /// Print JSON ({"user", "title", "category"}) instead of text
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// The command line, with each option's default appended to its help from
    /// [`crate::config::shown_defaults`], so a default is written once, in `config::defaults`.
    pub fn command_with_defaults() -> clap::Command {
        let mut command = <Cli as clap::CommandFactory>::command();
        for (id, shown) in crate::config::shown_defaults() {
            command = command.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {shown}]"))
            });
        }
        command
    }

    /// Parses the process's arguments; a mistake or `--help` prints and exits, as clap does.
    pub fn parse_args() -> Self {
        let matches = Self::command_with_defaults().get_matches();
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

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
        Ok(Store::open_database(&settings.database)?)
    };
    match command {
        Command::Serve { .. } => anyhow::bail!("serve is not an operator command"),
        Command::User(UserCommand::Add { name, admin, json }) => {
            add_user(settings, &open()?, name, *admin, *json, out)?
        }
        Command::User(UserCommand::List { json }) => list_users(&open()?, *json, out)?,
        Command::User(UserCommand::Ban { name }) => {
            let user =
                ops::admin(&open()?, None, AdminAction::Ban, name).map_err(|e| no_user(e, name))?;
            writeln!(out, "banned {user}")?;
        }
        Command::User(UserCommand::Unban { name }) => {
            let user = ops::admin(&open()?, None, AdminAction::Unban, name)
                .map_err(|e| no_user(e, name))?;
            writeln!(out, "unbanned {user}")?;
        }
        Command::User(UserCommand::Password { name }) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            open()?.set_password(name, line.trim_end_matches(['\r', '\n']))?;
            writeln!(out, "password set for {}", name.to_ascii_lowercase())?;
        }
        Command::Key(KeyCommand::Rotate { name, json }) => {
            let key = ops::rotate_key(&open()?, None, name).map_err(|e| no_user(e, name))?;
            let user = name.to_ascii_lowercase();
            if *json {
                return print_json(out, &json!({ "user": user, "stream_key": key }));
            }
            writeln!(
                out,
                "new stream key for {user} (shown only now; the old key no longer works): {key}"
            )?;
        }
        Command::Streams { json } => list_streams(&open()?, *json, out)?,
        Command::Access(command) => access(&open()?, command, out)?,
        Command::Recordings(command) => recordings(settings, &open()?, command, out)?,
        Command::PlaybackSecret(PlaybackSecretCommand::FilterConfig) => {
            let secrets: Vec<_> = (open()?.playback_secrets()?.into_iter())
                .map(|(id, bytes)| {
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    json!({ "id": id, "secret": hex })
                })
                .collect();
            return print_json(out, &json!({ "playback_secrets": secrets }));
        }
        Command::PlaybackSecret(PlaybackSecretCommand::Rotate) => {
            let id = open()?.rotate_playback_secret()?;
            writeln!(out, "playback secret {id} now signs; the previous one is still accepted. Update every edge's filter configuration (playback-secret filter-config) before rotating again.")?;
        }
        Command::Channel(ChannelCommand::Set {
            name,
            title,
            category,
        }) => {
            let info = ChannelInfo::new(title, category)?;
            let user = name.to_ascii_lowercase();
            if !open()?.set_channel_info(&user, &info)? {
                anyhow::bail!("no such user: {user}");
            }
            writeln!(out, "channel {user}: title and category set")?;
        }
        Command::Channel(ChannelCommand::Show { name, json }) => {
            let user = name.to_ascii_lowercase();
            let Some(info) = open()?.channel_info(&user)? else {
                anyhow::bail!("no such user: {user}");
            };
            if *json {
                return print_json(
                    out,
                    &json!({ "user": user, "title": info.title, "category": info.category }),
                );
            }
            writeln!(out, "title: {}\ncategory: {}", info.title, info.category)?;
        }
    }
    Ok(())
}

fn recordings(
    settings: &Settings,
    store: &Store,
    command: &RecordingsCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let recordings = crate::record::Recordings::new(settings, None);
    let user = |name: &str| {
        Username::parse(name).map_err(|e| anyhow::anyhow!("invalid username {name:?}: {e}"))
    };
    match command {
        RecordingsCommand::List { name, json } => {
            let user = user(name)?;
            let list = recordings.list(&user);
            if *json {
                return print_json(out, &json!({ "user": user.as_str(), "recordings": list }));
            }
            writeln!(
                out,
                "{:<15} {:>10} {:>8} {:<9} title",
                "id", "seconds", "MB", "kind"
            )?;
            for r in list {
                writeln!(
                    out,
                    "{:<15} {:>10} {:>8} {:<9} {}",
                    r.id,
                    r.duration_ms / 1000,
                    r.bytes >> 20,
                    if r.private { "encrypted" } else { "clear" },
                    r.title
                )?;
            }
        }
        RecordingsCommand::Delete { name, id } => {
            let user = user(name)?;
            // The server may be recording it right now: its log is still open while it is live.
            if store.live_stream(user.as_str())?.is_some() && recordings.is_open(&user, *id) {
                anyhow::bail!(
                    "{user}'s recording {id} is still recording; delete it once the stream ends"
                );
            }
            // With several nodes the recording may be on another node's disk: marked deleted in
            // the site's index, it leaves every listing now and that node's disk at its next pass.
            let here = recordings.delete(&user, *id);
            let indexed = store.is_shared() && store.mark_recording_deleted(user.as_str(), *id)?;
            if !here && !indexed {
                anyhow::bail!("{user} has no recording {id}");
            }
            writeln!(out, "recording {id} of {user} deleted")?;
        }
        RecordingsCommand::Keep { name, keep } => {
            let user = user(name)?;
            store.set_keep_recordings(user.as_str(), keep == "on")?;
            writeln!(out, "channel {user}: recordings {keep}")?;
        }
    }
    Ok(())
}

fn access(store: &Store, command: &AccessCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        AccessCommand::Set { name, visibility } => {
            let user = name.to_ascii_lowercase();
            let restarted = store.set_private(&user, visibility == "private")?;
            writeln!(out, "channel {user} is {visibility}")?;
            if restarted {
                writeln!(
                    out,
                    "its live stream was stopped so that it restarts encrypted when the encoder reconnects"
                )?;
            }
        }
        AccessCommand::Allow { name, viewer } | AccessCommand::Disallow { name, viewer } => {
            let allow = matches!(command, AccessCommand::Allow { .. });
            let (user, viewer) = (name.to_ascii_lowercase(), viewer.to_ascii_lowercase());
            store.set_viewer_allowed(&user, &viewer, allow)?;
            let verb = if allow { "may" } else { "may no longer" };
            writeln!(out, "{viewer} {verb} watch {user}")?;
        }
        AccessCommand::Share { name, hours } => {
            let user = name.to_ascii_lowercase();
            let (link, code) = store.create_share_link(&user, i64::from(*hours) * 3_600_000)?;
            writeln!(
                out,
                "share link {} (shown only now): /{user}#share={code}",
                link.id
            )?;
        }
        AccessCommand::Revoke { name, id } => {
            let user = name.to_ascii_lowercase();
            if !store.revoke_share_link(&user, *id)? {
                anyhow::bail!("{user} has no share link {id}");
            }
            writeln!(out, "share link {id} revoked")?;
        }
        AccessCommand::Show { name } => {
            let user = name.to_ascii_lowercase();
            let Some(private) = store.is_private(&user)? else {
                anyhow::bail!("no such user: {user}");
            };
            let shown = if private { "private" } else { "public" };
            writeln!(out, "{user}: {shown}")?;
            writeln!(out, "allowed: {}", store.allowed_viewers(&user)?.join(", "))?;
            for link in store.share_links(&user)? {
                writeln!(
                    out,
                    "share link {}: expires {} ms",
                    link.id, link.expires_ms
                )?;
            }
        }
    }
    Ok(())
}

fn add_user(
    settings: &Settings,
    store: &Store,
    name: &str,
    admin: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (user, key) = store.add_user(name, admin)?;
    if json {
        return print_json(
            out,
            &json!({ "user": user.as_str(), "admin": admin, "stream_key": key }),
        );
    }
    let admin = if admin { " (admin)" } else { "" };
    writeln!(out, "created user {user}{admin}")?;
    writeln!(
        out,
        "stream key (shown only now; store it in your encoder): {key}"
    )?;
    let (port, app) = (settings.rtmp_listen.port(), &settings.rtmp_app);
    writeln!(
        out,
        "publish to: rtmp://<this host>:{port}/{app}/<stream key>"
    )?;
    Ok(())
}

/// The CLI's wording for an action's error (the name as the operator typed it).
fn no_user(err: ActionError, name: &str) -> anyhow::Error {
    match err {
        ActionError::UnknownUser => anyhow::anyhow!("no user named {name:?}"),
        other => other.into(),
    }
}

fn print_json(out: &mut dyn Write, value: &serde_json::Value) -> anyhow::Result<()> {
    writeln!(out, "{value}")?;
    Ok(())
}

fn list_users(store: &Store, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let users = store.list_users()?;
    if json {
        let rows: Vec<_> = (users.iter())
            .map(|u| {
                json!({ "user": u.username, "admin": u.is_admin, "banned": u.banned,
                        "live_since_ms": u.live_since_ms, "created_ms": u.created_ms })
            })
            .collect();
        return print_json(out, &json!({ "users": rows }));
    }
    writeln!(
        out,
        "{:<25} {:<6} {:<7} {:<24}",
        "USER", "ADMIN", "BANNED", "LIVE SINCE"
    )?;
    for u in users {
        let since = u.live_since_ms.map(format_date_time);
        let (admin, banned) = (yes(u.is_admin), yes(u.banned));
        let since = since.as_deref().unwrap_or("-");
        writeln!(out, "{:<25} {admin:<6} {banned:<7} {since:<24}", u.username)?;
    }
    Ok(())
}

fn list_streams(store: &Store, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let streams = store.live_streams()?;
    if json {
        let rows: Vec<_> = (streams.iter())
            .map(|s| {
                let st = &s.stats;
                json!({ "user": s.username, "since_ms": s.since_ms, "video_codec": st.video_codec,
                        "audio_codec": st.audio_codec, "width": st.width, "height": st.height,
                        "fps": st.fps, "bitrate_kbps": st.bitrate_kbps })
            })
            .collect();
        return print_json(out, &json!({ "streams": rows }));
    }
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
        let st = &s.stats;
        let codecs = [st.video_codec.as_str(), st.audio_codec.as_str()]
            .iter()
            .filter(|c| !c.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("+");
        let codecs = if codecs.is_empty() {
            "-".into()
        } else {
            codecs
        };
        let resolution = if st.width > 0 {
            format!("{}x{}", st.width, st.height)
        } else {
            "-".into()
        };
        let up = (now_ms() - s.since_ms).max(0) / 1000;
        let uptime = format!("{}:{:02}:{:02}", up / 3600, up / 60 % 60, up % 60);
        let since = format_date_time(s.since_ms);
        writeln!(
            out,
            "{:<25} {since:<24} {uptime:>8} {codecs:<12} {resolution:>10} {:>6}",
            s.username, st.bitrate_kbps
        )?;
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
    #[test]
    fn every_option_shows_its_default_once() {
        let options = <Options as clap::Args>::augment_args(clap::Command::new("o"));
        let command = Cli::command_with_defaults();
        let mut seen = 0;
        for arg in options.get_arguments() {
            let id = arg.get_id().as_str();
            let shown = command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            assert_eq!(shown.matches("[default: ").count(), 1, "{id}: {shown}");
            seen += 1;
        }
        assert_eq!(seen, crate::config::shown_defaults().len());
        let resolved = Settings::default();
        let help = Cli::command_with_defaults().render_long_help().to_string();
        for shown in [
            resolved.rtmp_listen.to_string(),
            resolved.hls_window.to_string(),
        ] {
            assert!(help.contains(&format!("[default: {shown}]")), "{shown}");
        }
    }

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
    fn json_output_is_for_machines() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let added: serde_json::Value =
            serde_json::from_str(&run(&s, &["user", "add", "Alice", "--json"]).unwrap()).unwrap();
        assert_eq!(added["user"], "alice");
        let key = added["stream_key"].as_str().unwrap().to_string();
        assert!(key::is_well_formed(&key));
        let rotated: serde_json::Value =
            serde_json::from_str(&run(&s, &["key", "rotate", "alice", "--json"]).unwrap()).unwrap();
        assert!(key::is_well_formed(rotated["stream_key"].as_str().unwrap()));
        let users: serde_json::Value =
            serde_json::from_str(&run(&s, &["user", "list", "--json"]).unwrap()).unwrap();
        assert_eq!(users["users"][0]["user"], "alice");
        let listed = users.to_string();
        assert!(!listed.contains(&key), "keys are never listed");
        assert!(!listed.contains(rotated["stream_key"].as_str().unwrap()));
        let streams: serde_json::Value =
            serde_json::from_str(&run(&s, &["streams", "--json"]).unwrap()).unwrap();
        assert_eq!(streams["streams"], serde_json::json!([]));
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
        let store = Store::open_database(&s.database).unwrap();
        let (_, key) = store.add_user("alice", false).unwrap();
        let (_, id) = (store.begin_publish(&key, &s.node).unwrap().accepted()).unwrap();
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
                    playable: true,
                    thumbnail: None,
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
