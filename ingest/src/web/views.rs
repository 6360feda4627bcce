//! The website's HTML, as maud templates: checked at compile time, and every value put into a page
//! is escaped unless it is explicitly markup — hand escaping (one forgotten call is an XSS) is
//! gone. Pure: handlers fetch the data and choose the status; these only render.

use std::collections::HashMap;

use maud::{html, Markup, DOCTYPE};

use crate::channel_info::{ChannelInfo, MAX_CATEGORY_CHARS, MAX_TITLE_CHARS};
use crate::clock::now_ms;
use crate::record::RecordingInfo;
use crate::store::{ApiTokenRow, LiveRow, SessionUser, UserRow};
use boltstream_hls::date::format_date_time;
use boltstream_shared::username::Username;

/// The page frame: header with the navigation for `user`, then `body`.
pub fn layout(title: &str, user: Option<&SessionUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Boltstream" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    a.brand href="/" { "Bolt" span { "stream" } }
                    nav { (nav(user)) }
                }
                main { (body) }
            }
        }
    }
}

fn nav(user: Option<&SessionUser>) -> Markup {
    match user {
        Some(s) => html! {
            a href="/dashboard" { "Dashboard" }
            @if s.user.is_admin { a href="/admin" { "Admin" } }
            span.muted.small { (s.user.username) }
            form.inline method="post" action="/logout" {
                input type="hidden" name="csrf" value=(s.csrf);
                button.secondary type="submit" { "Log out" }
            }
        },
        None => html! {
            a href="/login" { "Log in" }
            a.button href="/signup" { "Sign up" }
        },
    }
}

/// A message page (not found, forbidden, try again).
pub fn message(title: &str, text: &str) -> Markup {
    html! {
        div.narrow.card {
            h1 { (title) }
            p.muted { (text) }
            p { a href="/" { "Back to live channels" } }
        }
    }
}

/// The directory of live channels, with each one's viewers and newest picture.
pub fn directory(
    live: &[LiveRow],
    viewers: &HashMap<String, usize>,
    thumbnails: &HashMap<String, String>,
) -> Markup {
    if live.is_empty() {
        return html! {
            h1 { "Live channels" }
            div.card.offline {
                div.big { "Nobody is live right now" }
                p.muted {
                    "Channels show up here the moment their streamer goes live. Streaming yourself? "
                    a href="/signup" { "Create an account" }
                    " and point OBS at this server."
                }
            }
        };
    }
    html! {
        h1 { "Live channels " span.muted.small { (live.len()) " live" } }
        div.grid {
            @for row in live {
                (channel_card(
                    row,
                    viewers.get(&row.username).copied().unwrap_or(0),
                    thumbnails.get(&row.username).map(String::as_str),
                ))
            }
        }
    }
}

fn channel_card(row: &LiveRow, viewers: usize, thumbnail: Option<&str>) -> Markup {
    let initial = row
        .username
        .chars()
        .next()
        .unwrap_or('?')
        .to_ascii_uppercase();
    let since = format_date_time(row.since_ms);
    html! {
        a.card.channel href={ "/" (row.username) } {
            // The letter stays under the picture: it is the placeholder until the first
            // picture is made, and whenever one cannot be.
            div.thumb {
                (initial)
                @if let Some(src) = thumbnail {
                    img src=(src) alt={ "Live: " (row.username) } loading="lazy";
                }
            }
            div.row { span.badge.live { "LIVE" } b { (row.username) } }
            @if !row.info.title.is_empty() { div.title { (row.info.title) } }
            div.muted.small {
                @if !row.info.category.is_empty() { (row.info.category) " · " }
                "live since " (since.get(11..19).unwrap_or_default())
                @if row.stats.height > 0 { " · " (row.stats.height) "p" }
                " · " (viewers) @if viewers == 1 { " viewer" } @else { " viewers" }
            }
        }
    }
}

/// A channel page with the player.
pub fn channel(
    name: &str,
    live: bool,
    info: &ChannelInfo,
    locked: bool,
    poster: Option<&str>,
) -> Markup {
    html! {
        div data-channel=(name) data-live=(live) data-locked=(locked) {
            div.row {
                h1 { (name) }
                span #state .badge .live[live] { @if live { "LIVE" } @else { "OFFLINE" } }
                span #uptime .muted .small {}
                span #viewers .muted .small {}
                span #latency .muted .small title="How far behind the streamer you are watching" {}
            }
            @if !locked && (!info.title.is_empty() || !info.category.is_empty()) {
                div.row #info {
                    @if !info.title.is_empty() { span #title .title { (info.title) } }
                    @if !info.category.is_empty() { span #category .badge { (info.category) } }
                }
            }
            div.watch {
            div.player {
                video #player controls playsinline muted hidden[!live] poster=[poster] {}
                div #offline .offline hidden[live || locked] {
                    div.big { (name) " is offline" }
                    p.muted { "This page switches to the stream as soon as it starts. No need to reload." }
                }
                div #private .offline hidden[!locked] {
                    div.big { "This channel is private" }
                    p.muted { "Sign in as a viewer its streamer allowed, or open the share link you were given." }
                }
            }
            aside #chat .chat {
                div.chat-head { "Chat" }
                ol #chat-log .chat-log aria-live="polite" {}
                p #chat-note .muted.small {}
                form #chat-form .chat-form hidden {
                    input #chat-input type="text" maxlength=(crate::chat::text::MAX_CHARS) placeholder="Send a message" autocomplete="off";
                    button type="submit" { "Chat" }
                }
            }
            }
        }
        script src="/static/hls.min.js" {}
        script src="/static/player.js" {}
        script src="/static/chat.js" {}
    }
}

/// `1h 02m 03s` / `2m 03s`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// A channel's past broadcasts, newest first, each linking to its player.
pub fn past_broadcasts(name: &str, recordings: &[RecordingInfo]) -> Markup {
    html! {
        @if !recordings.is_empty() {
            section #past .mt {
                h2 { "Past broadcasts" }
                div.grid {
                    @for r in recordings {
                        a.card.past href={ "/" (name) "/past/" (r.id) } data-id=(r.id) {
                            div.thumb {
                                "▶"
                                @if r.thumbnail {
                                    img src={ "/vod/" (name) "/" (r.id) "/thumb.jpg" } alt="" loading="lazy";
                                }
                            }
                            @if !r.title.is_empty() { div.title { (r.title) } }
                            div.muted.small {
                                (format_date_time(r.id as i64).get(..16).unwrap_or_default().replace('T', " "))
                                " · " span.duration { (duration(r.duration_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The player of one past broadcast: hls.js (or native HLS) on its VOD playlist, seekable.
pub fn past_broadcast(channel: &Username, r: &RecordingInfo, playlist: &str) -> Markup {
    html! {
        // An encrypted recording's player first asks for the playback token (a cookie).
        @let token_for = r.private.then_some(channel.as_str());
        div data-vod=(playlist) data-playback=[token_for] {
            div.row {
                h1 { a href={ "/" (channel) } { (channel) } }
                span.badge { "PAST BROADCAST" }
                @if r.private { span.badge { "PRIVATE" } }
                span.muted.small {
                    (format_date_time(r.id as i64).get(..16).unwrap_or_default().replace('T', " "))
                    " · " (duration(r.duration_ms))
                }
            }
            @if !r.title.is_empty() { div.row { span.title #title { (r.title) } } }
            @let poster = r.thumbnail.then(|| format!("/vod/{channel}/{}/thumb.jpg", r.id));
            div.player { video #player controls playsinline muted poster=[poster] {} }
        }
        script src="/static/hls.min.js" {}
        script src="/static/vod.js" {}
    }
}

/// The player of a private channel's past broadcast `id`, for a visitor whose session may not
/// watch the channel: the page's script asks for the playback token with the share link's code
/// from the URL's fragment, and plays only if that opens the channel.
pub fn private_past_broadcast(channel: &Username, id: u64) -> Markup {
    let playlist = format!("/private/{channel}/vod/{id}/index.m3u8");
    html! {
        div data-vod=(playlist) data-playback=(channel.as_str()) {
            div.row {
                h1 { a href={ "/" (channel) } { (channel) } }
                span.badge { "PAST BROADCAST" }
                span.badge { "PRIVATE" }
            }
            div.player {
                video #player controls playsinline muted {}
                div #private .offline hidden {
                    div.big { "This broadcast is private" }
                    div.muted { "Sign in as someone the streamer allowed, or open their share link." }
                }
            }
        }
        script src="/static/hls.min.js" {}
        script src="/static/vod.js" {}
    }
}

/// The sign-up or log-in form.
pub struct AuthForm<'a> {
    /// Page title.
    pub title: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    /// The submit button.
    pub button: &'a str,
    /// A hint under the username.
    pub hint: &'a str,
    /// `new-password` or `current-password`.
    pub autocomplete: &'a str,
}

/// A sign-up or log-in form with its CSRF token and an error, if the last try failed.
pub fn auth_form(form: &AuthForm<'_>, csrf: &str, error: Option<&str>) -> Markup {
    html! {
        div.narrow.card {
            h1 { (form.title) }
            @if let Some(error) = error { div.notice.error { (error) } }
            form method="post" action=(form.action) {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Username" }
                input #username type="text" name="username" autocomplete="username" required maxlength="25";
                p.muted.small { (form.hint) }
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete=(form.autocomplete) required;
                p { button type="submit" { (form.button) } }
            }
        }
    }
}

/// What the dashboard shows.
pub struct Dashboard<'a> {
    /// The signed-in user.
    pub session: &'a SessionUser,
    /// Their stream, if live.
    pub live: Option<&'a LiveRow>,
    /// Their API tokens.
    pub tokens: &'a [ApiTokenRow],
    /// A stream key or API token shown once.
    pub fresh: Option<&'a str>,
    /// A one-line message at the top.
    pub notice: Option<&'a str>,
    /// The RTMP URL to publish to.
    pub rtmp_url: &'a str,
    /// Their channel's title and category.
    pub info: &'a ChannelInfo,
    /// Who may watch their channel.
    pub access: &'a WhoWatches,
    /// Whether their publishes are recorded, and what is kept.
    pub past: &'a PastBroadcasts,
}

/// A streamer's recordings, as the dashboard shows them.
pub struct PastBroadcasts {
    /// Their publishes are recorded.
    pub keep: bool,
    /// Finished recordings, newest first.
    pub recordings: Vec<RecordingInfo>,
}

/// Who may watch a channel, as its dashboard shows it.
pub struct WhoWatches {
    /// Private or public.
    pub private: bool,
    /// Users allowed by name.
    pub allowed: Vec<String>,
    /// Share links that have not expired.
    pub links: Vec<crate::store::ShareLink>,
}

/// The streamer's dashboard.
pub fn dashboard(d: &Dashboard<'_>) -> Markup {
    let csrf = d.session.csrf.as_str();
    html! {
        h1 { "Dashboard" }
        @if let Some(notice) = d.notice { div.notice { (notice) } }
        @if let Some(fresh) = d.fresh { (fresh_secret(fresh)) }
        div.card { h2 { "Stream" } (stream_status(d.live)) }
        div.card.mt {
            h2 { "Title and category" }
            p.muted.small { "Shown on your channel page and in the directory; kept for your next streams." }
            form method="post" action="/dashboard/channel" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Title" }
                input type="text" name="title" value=(d.info.title) maxlength=(MAX_TITLE_CHARS);
                label { "Category" }
                input type="text" name="category" value=(d.info.category) maxlength=(MAX_CATEGORY_CHARS);
                button type="submit" { "Save" }
            }
        }
        (who_watches(d.access, csrf))
        (past_broadcasts_card(d.session.user.username.as_str(), d.past, csrf))
        div.card.mt {
            h2 { "Streaming setup" }
            label { "Server" }
            code { (d.rtmp_url) }
            label { "Stream key" }
            p.muted.small { "Shown only when it is created or rotated. Lost it, or think someone saw it? Rotate it: the old key stops working at once." }
            (post_button("/dashboard/rotate", csrf, "danger", "Rotate stream key"))
        }
        div.card.mt {
            h2 { "API" }
            p.muted.small { "Tokens for " code { "/api/v1/" } ", shown once." }
            @for token in d.tokens {
                div.row {
                    code { (token.id) }
                    span.muted.small { "created " (format_date_time(token.created_ms)) }
                    form method="post" action="/dashboard/revoke-token" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="id" value=(token.id);
                        button.secondary type="submit" { "Revoke" }
                    }
                }
            }
            (post_button("/dashboard/token", csrf, "secondary", "Create API token"))
        }
        div.card.mt {
            h2 { "Password" }
            p.muted.small { "Changing it signs out every other session of yours." }
            form method="post" action="/dashboard/password" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Current password" }
                input type="password" name="current" autocomplete="current-password" required;
                label { "New password" }
                input type="password" name="new" autocomplete="new-password" minlength="8" required;
                button type="submit" { "Change password" }
            }
        }
    }
}

fn past_broadcasts_card(name: &str, p: &PastBroadcasts, csrf: &str) -> Markup {
    html! {
        div.card.mt #recordings {
            h2 { "Past broadcasts" }
            p.muted.small {
                @if p.keep { "Your public streams are recorded and kept for viewers to watch later." }
                @else { "Your streams are not recorded." }
            }
            form method="post" action="/dashboard/keep-recordings" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="keep" value=(if p.keep { "0" } else { "1" });
                button.secondary type="submit" { @if p.keep { "Stop recording" } @else { "Record my streams" } }
            }
            @for r in &p.recordings {
                div.row data-recording=(r.id) {
                    a href={ "/" (name) "/past/" (r.id) } {
                        (format_date_time(r.id as i64).get(..16).unwrap_or_default().replace('T', " "))
                    }
                    span.muted.small { (duration(r.duration_ms)) " · " (r.bytes >> 20) " MB" }
                    @if !r.title.is_empty() { span.small { (r.title) } }
                    form method="post" action="/dashboard/delete-recording" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="id" value=(r.id);
                        button.danger type="submit" { "Delete" }
                    }
                }
            }
        }
    }
}

fn who_watches(a: &WhoWatches, csrf: &str) -> Markup {
    html! {
        div.card.mt #access {
            h2 { "Who can watch" }
            @if a.private {
                p { span.badge { "Private" } " Only you, the viewers below and holders of a share link can watch; your video is encrypted." }
                form method="post" action="/dashboard/visibility" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="private" value="0";
                    button.secondary type="submit" { "Make public" }
                }
                h2 { "Allowed viewers" }
                @for viewer in &a.allowed {
                    div.row {
                        span { (viewer) }
                        form method="post" action="/dashboard/disallow" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="viewer" value=(viewer);
                            button.secondary type="submit" { "Remove" }
                        }
                    }
                }
                form method="post" action="/dashboard/allow" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Username" }
                    input type="text" name="viewer" maxlength="25" required;
                    button type="submit" { "Allow" }
                }
                h2 { "Share links" }
                @for link in &a.links {
                    div.row {
                        span.muted.small { "link " (link.id) ", expires " (format_date_time(link.expires_ms)) }
                        form method="post" action="/dashboard/revoke-share" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="id" value=(link.id);
                            button.secondary type="submit" { "Revoke" }
                        }
                    }
                }
                form method="post" action="/dashboard/share" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Valid for (hours)" }
                    input type="number" name="hours" min="1" max="720" value="24";
                    button type="submit" { "Create share link" }
                }
            } @else {
                p { "Public: anyone can watch." }
                form method="post" action="/dashboard/visibility" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="private" value="1";
                    button.secondary type="submit" { "Make private" }
                }
            }
        }
    }
}

fn post_button(action: &str, csrf: &str, class: &str, label: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button class=(class) type="submit" { (label) }
        }
    }
}

fn fresh_secret(secret: &str) -> Markup {
    if secret.starts_with("bst_") {
        return html! {
            div.notice {
                b { "Your new API token" }
                " — shown only now. Use it as " code { "Authorization: Bearer …" } "."
                span.secret { (secret) }
            }
        };
    }
    html! {
        div.notice {
            b { "Your stream key" }
            " — shown only now. Paste it into OBS (Settings → Stream → Stream Key) and keep it secret."
            span.secret #stream-key { (secret) }
        }
    }
}

fn stream_status(live: Option<&LiveRow>) -> Markup {
    let Some(row) = live else {
        return html! {
            div.row {
                span.badge { "OFFLINE" }
                span.muted { "Start streaming from OBS and this turns live within seconds." }
            }
        };
    };
    let up = (now_ms() - row.since_ms).max(0) / 1000;
    let st = &row.stats;
    let codecs = [st.video_codec.as_str(), st.audio_codec.as_str()]
        .iter()
        .filter(|c| !c.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" + ");
    let uptime = format!("{}:{:02}:{:02}", up / 3600, up / 60 % 60, up % 60);
    let stat = |label: &str, value: Markup| {
        html! { div { span.muted.small { (label) } b { (value) } } }
    };
    html! {
        div.row { span.badge.live { "LIVE" } a href={ "/" (row.username) } { "Watch your channel" } }
        div.stats.mt {
            (stat("Uptime", html! { (uptime) }))
            (stat("Codecs", html! { @if codecs.is_empty() { "—" } @else { (codecs) } }))
            (stat("Resolution", html! { (st.width) "×" (st.height) }))
            (stat("Frame rate", html! { (st.fps) " fps" }))
            (stat("Bitrate", html! { (st.bitrate_kbps) " kb/s" }))
        }
    }
}

/// The admin page: live streams and users, each with its actions.
pub fn admin(s: &SessionUser, users: &[UserRow], live: &[LiveRow], notice: Option<&str>) -> Markup {
    let csrf = s.csrf.as_str();
    let button = |kind: &str, name: &str, action: &str, label: &str, class: &str| {
        html! {
            form.inline method="post" action={ "/admin/" (kind) "/" (name) "/" (action) } {
                input type="hidden" name="csrf" value=(csrf);
                button class=(class) type="submit" { (label) }
            }
            " "
        }
    };
    html! {
        h1 { "Admin" }
        @if let Some(notice) = notice { div.notice { (notice) } }
        div.card {
            h2 { "Live streams" }
            @if live.is_empty() {
                p.muted { "Nobody is live." }
            } @else {
                table {
                    tr { th { "Channel" } th { "Since" } th { "Bitrate" } th {} }
                    @for r in live {
                        tr {
                            td { a href={ "/" (r.username) } { (r.username) } }
                            td { (format_date_time(r.since_ms)) }
                            td { (r.stats.bitrate_kbps) " kb/s" }
                            td { (button("streams", &r.username, "stop", "Stop stream", "danger")) }
                        }
                    }
                }
            }
        }
        div.card.mt {
            h2 { "Users" }
            table {
                tr { th { "User" } th { "Role" } th { "Status" } th { "Live" } th {} }
                @for u in users {
                    tr {
                        td { (u.username) }
                        td { @if u.is_admin { "admin" } }
                        td { @if u.banned { span.badge { "BANNED" } } }
                        td { @if u.live_since_ms.is_some() { span.badge.live { "LIVE" } } }
                        td {
                            @if u.banned {
                                (button("users", &u.username, "unban", "Unban", "secondary"))
                            } @else {
                                (button("users", &u.username, "ban", "Ban", "danger"))
                            }
                            @if u.is_admin {
                                (button("users", &u.username, "unadmin", "Remove admin", "secondary"))
                            } @else {
                                (button("users", &u.username, "admin", "Make admin", "secondary"))
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StreamStats;

    #[test]
    fn values_are_escaped_everywhere() {
        let hostile = "<script>alert(1)</script>\"'&";
        let page = message(hostile, hostile).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        let row = LiveRow {
            username: "alice".into(),
            info: ChannelInfo {
                title: hostile.into(),
                category: hostile.into(),
            },
            since_ms: 0,
            stats: StreamStats {
                video_codec: "<i>x</i>".into(),
                ..StreamStats::default()
            },
            private: false,
        };
        let form = AuthForm {
            title: hostile,
            action: "/login",
            button: hostile,
            hint: hostile,
            autocomplete: "current-password",
        };
        for html in [
            auth_form(&form, "\"><script>", Some(hostile)).into_string(),
            stream_status(Some(&row)).into_string(),
            channel("a\"b", true, &row.info, false, None).into_string(),
            directory(std::slice::from_ref(&row), &HashMap::new(), &HashMap::new()).into_string(),
        ] {
            assert!(
                !html.contains("<script>") && !html.contains("<i>"),
                "{html}"
            );
        }
        let csrf = auth_form(&form, "abc", None).into_string();
        assert!(
            csrf.contains(r#"<input type="hidden" name="csrf" value="abc">"#),
            "{csrf}"
        );
    }

    #[test]
    fn the_player_page_keeps_what_its_script_reads() {
        let live = channel("alice", true, &ChannelInfo::default(), false, None).into_string();
        for needed in [
            r#"data-channel="alice""#,
            r#"data-live="true""#,
            r#"id="state""#,
            r#"id="uptime""#,
            r#"id="player""#,
            r#"id="offline""#,
            r#"id="private""#,
            r#"src="/static/player.js""#,
        ] {
            assert!(live.contains(needed), "{needed}: {live}");
        }
        assert!(
            channel("alice", false, &ChannelInfo::default(), false, None)
                .into_string()
                .contains(r#"data-live="false""#)
        );
        // A private channel shown to someone who may not watch: its notice, no title.
        let info = ChannelInfo::new("secret plans", "x").unwrap();
        let locked = channel("alice", false, &info, true, None).into_string();
        assert!(locked.contains(r#"data-locked="true""#), "{locked}");
        assert!(!locked.contains("secret plans"), "{locked}");
        let pictured = channel(
            "alice",
            true,
            &ChannelInfo::default(),
            false,
            Some("/thumb/alice/7.jpg"),
        );
        assert!(pictured
            .into_string()
            .contains(r#"poster="/thumb/alice/7.jpg""#));
    }

    #[test]
    fn directory_cards_show_the_picture_over_the_letter_placeholder() {
        let row = |name: &str| LiveRow {
            username: name.into(),
            info: ChannelInfo::default(),
            since_ms: 0,
            stats: StreamStats::default(),
            private: false,
        };
        let pictures = HashMap::from([("alice".to_string(), "/thumb/alice/7.jpg".to_string())]);
        let html = directory(&[row("alice"), row("bob")], &HashMap::new(), &pictures).into_string();
        assert!(html.contains(r#"<img src="/thumb/alice/7.jpg""#), "{html}");
        assert_eq!(html.matches("<img").count(), 1, "bob has none yet: {html}");
        assert!(html.contains(r#"<div class="thumb">B</div>"#), "{html}");
    }
}
