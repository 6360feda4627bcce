//! Static assets embedded in the binary, so a release binary is self-contained: hls.js (vendored
//! from npm, see `scripts/refresh-hlsjs`), the player glue and the stylesheet.

/// hls.js, minified, as pinned by `ingest/assets/package-lock.json`.
pub const HLS_JS: &[u8] = include_bytes!("../../assets/hls.min.js");
/// The SHA-256 recorded when hls.js was vendored.
pub const HLS_JS_SHA256: &str = include_str!("../../assets/hls.min.js.sha256");
/// hls.js's licence, served next to it.
pub const HLS_JS_LICENSE: &str = include_str!("../../assets/hls.js.LICENSE");

/// The share link's code from the URL's fragment, as the script variable `share`. A fragment is
/// never sent in a request, so the code reaches the server only in the POST bodies the scripts
/// put it in; one definition for every script that reads it.
macro_rules! share_code_js {
    () => {
        r#"  var share = (function () {
    var m = /(?:^|[#&])share=([A-Za-z0-9_]{1,128})/.exec(location.hash);
    return m ? m[1] : null;
  })();
"#
    };
}

/// A past broadcast's player: the VOD playlist through hls.js (or natively on Safari). Being a
/// finished playlist, hls.js offers the whole timeline to seek in. An encrypted recording
/// (`data-playback`) first gets the playback-token cookie from the channel's playback call, and
/// renews it at half its life, as the live player does, so keys met late in a long recording are
/// still served. A share link's code, in the URL's fragment, goes in that call's body.
pub const VOD_JS: &str = concat!(
    r#"(function () {
  var root = document.querySelector('[data-vod]');
  if (!root) return;
  var src = root.getAttribute('data-vod');
  var channel = root.getAttribute('data-playback');
  var video = document.getElementById('player');
"#,
    share_code_js!(),
    r#"  window.boltstreamErrors = [];
  function token() {
    return fetch('/api/v1/channels/' + channel + '/playback', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(share ? { share: share } : {})
    }).then(function (r) {
      if (!r.ok) throw new Error('playback ' + r.status);
      return r.json();
    }).then(function (j) {
      var left = j.expires_s ? j.expires_s * 1000 - Date.now() : 300000;
      setTimeout(function () { token().catch(function (e) { window.boltstreamErrors.push(String(e)); }); },
        Math.max(10000, left / 2));
    });
  }
  function start() {
    if (window.Hls && Hls.isSupported()) {
      var hls = new Hls();
      hls.on(Hls.Events.ERROR, function (_, d) { window.boltstreamErrors.push(d.details + (d.fatal ? ' (fatal)' : '')); });
      window.boltstreamHls = hls;
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = src;
    }
    var p = video.play(); if (p && p.catch) p.catch(function () {});
  }
  if (channel) {
    token().then(start, function (e) {
      window.boltstreamErrors.push(String(e));
      var locked = document.getElementById('private');
      if (locked) { locked.hidden = false; video.hidden = true; }
    });
  } else {
    start();
  }
})();
"#
);

/// The channel page's script: attaches hls.js (or native HLS on Safari), keeps the live state
/// current by polling the channel API, and shows how far behind live the viewer is — the wall
/// clock minus the EXT-X-PROGRAM-DATE-TIME at the playhead, which the origin stamps from each
/// segment's first frame's arrival, so it counts everything after the encoder.
///
/// hls.js runs in low-latency mode: on a CMAF playlist it plays PART-HOLD-BACK behind the live
/// edge, fetching parts with blocking reloads; on an MPEG-TS playlist it falls back to three
/// segments. No `liveSyncDuration*` is set, because a user value there overrides PART-HOLD-BACK;
/// a player that fell behind (a stall, a slow network) catches up at up to 1.1× speed.
pub const PLAYER_JS: &str = concat!(
    r#"(function () {
  var root = document.querySelector('[data-channel]');
  if (!root) return;
  var user = root.getAttribute('data-channel');
  var video = document.getElementById('player');
  var state = document.getElementById('state');
  var uptime = document.getElementById('uptime');
  var offline = document.getElementById('offline');
  var latency = document.getElementById('latency');
  var viewers = document.getElementById('viewers');
  var locked = document.getElementById('private');
  var src = null;
  var hls = null, since = null;
  // A share link's code rides in the URL's fragment, which no request carries: it reaches the
  // server only in the body of the playback call below, never an access log.
"#,
    share_code_js!(),
    r#"  // An anonymous id for this tab, for the viewer count; never sent anywhere else.
  var viewerId = (function () {
    try { var kept = sessionStorage.getItem('bsViewer'); if (kept) return kept; } catch (e) {}
    var bytes = new Uint8Array(16); crypto.getRandomValues(bytes);
    var id = Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
    try { sessionStorage.setItem('bsViewer', id); } catch (e) {}
    return id;
  })();
  function showViewers(n) {
    viewers.setAttribute('data-count', String(n));
    viewers.textContent = n + (n === 1 ? ' viewer' : ' viewers');
  }
  function beat() {
    if (!video.getAttribute('data-playing')) return;
    fetch('/api/v1/channels/' + user + '/heartbeat', {
      method: 'POST', cache: 'no-store',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(share ? { viewer: viewerId, share: share } : { viewer: viewerId })
    }).then(function (r) { return r.json(); }).then(function (b) {
      if (typeof b.viewers === 'number') showViewers(b.viewers);
    }).catch(function () {});
  }
  window.boltstreamErrors = [];
  function start() {
    if (hls || video.getAttribute('data-playing') || !src) return;
    video.setAttribute('data-playing', '1');
    video.muted = true;
    if (window.Hls && Hls.isSupported()) {
      hls = new Hls({ lowLatencyMode: true, backBufferLength: 30, maxLiveSyncPlaybackRate: 1.1 });
      hls.on(Hls.Events.ERROR, function (_, d) {
        window.boltstreamErrors.push(d.details + (d.fatal ? ' (fatal)' : ''));
        if (d.fatal) { hls.destroy(); hls = null; video.removeAttribute('data-playing'); }
      });
      window.boltstreamHls = hls;
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = src;
    }
    var p = video.play(); if (p && p.catch) p.catch(function () {});
    beat();
  }
  function stop() {
    if (hls) { hls.destroy(); hls = null; }
    video.removeAttribute('data-playing');
  }
  function fmt(s) {
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = Math.floor(s % 60);
    return (h ? h + 'h ' : '') + m + 'm ' + (x < 10 ? '0' : '') + x + 's';
  }
  // A share link's holder has no session the page could have listed past broadcasts for: they
  // are asked for once, with the code in the body, and linked with the code in the fragment.
  var pastAsked = false;
  function showPast(list) {
    if (!list || !list.length || document.getElementById('past')) return;
    var section = document.createElement('section'); section.id = 'past'; section.className = 'mt';
    var h = document.createElement('h2'); h.textContent = 'Past broadcasts'; section.appendChild(h);
    var grid = document.createElement('div'); grid.className = 'grid'; section.appendChild(grid);
    list.forEach(function (r) {
      var a = document.createElement('a'); a.className = 'card past';
      a.href = r.page + '#share=' + share; a.setAttribute('data-id', String(r.id));
      var t = document.createElement('div'); t.className = 'thumb'; t.textContent = '\u25b6'; a.appendChild(t);
      if (r.title) { var ti = document.createElement('div'); ti.className = 'title'; ti.textContent = r.title; a.appendChild(ti); }
      var m = document.createElement('div'); m.className = 'muted small';
      m.textContent = new Date(r.started_ms).toISOString().slice(0, 16).replace('T', ' ') + ' \u00b7 ' + fmt(r.duration_s);
      a.appendChild(m); grid.appendChild(a);
    });
    root.parentNode.insertBefore(section, root.nextSibling);
  }
  function askPast() {
    pastAsked = true;
    fetch('/api/v1/channels/' + user + '/recordings', {
      method: 'POST', cache: 'no-store', credentials: 'same-origin',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ share: share })
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) { if (j) showPast(j.recordings); }).catch(function () {});
  }
  function render(c) {
    locked.hidden = true;
    if (share && c.private && !pastAsked) askPast();
    if (c.playlist && c.playlist !== src) {
      // Where this viewer plays the channel moved (a private publish began or ended): restart.
      if (src !== null) stop();
      src = c.playlist;
    }
    root.setAttribute('data-live', c.live ? 'true' : 'false');
    state.textContent = c.live ? 'LIVE' : 'OFFLINE';
    state.className = c.live ? 'badge live' : 'badge';
    since = c.live ? c.since_ms : null;
    offline.hidden = !!c.live;
    video.hidden = !c.live;
    if (c.live && typeof c.viewers === 'number') showViewers(c.viewers);
    // The newest picture of the stream shows until the first frame plays (and after it ends).
    if (c.thumbnail && video.getAttribute('poster') !== c.thumbnail) video.setAttribute('poster', c.thumbnail);
    if (!c.live) { viewers.textContent = ''; viewers.removeAttribute('data-count'); }
    if (c.live && c.playable) start();
    if (!c.live) stop();
  }
  // The playback call is the poll: it answers the channel's state and where to play it, and for
  // a private channel renews the playback-token cookie (tokens live five minutes; this runs every
  // two seconds, so a viewer whose access is revoked stops getting them at once).
  function poll() {
    fetch('/api/v1/channels/' + user + '/playback', {
      method: 'POST', cache: 'no-store', credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(share ? { share: share } : {})
    }).then(function (r) {
      if (r.status === 404) {
        stop();
        locked.hidden = false; offline.hidden = true; video.hidden = true;
        state.textContent = ''; state.className = 'badge';
        return null;
      }
      // A passing error (a busy server, a proxy's 503) must not stop a stream that plays.
      if (!r.ok) return null;
      return r.json();
    }).then(function (c) { if (c) render(c); }).catch(function () {});
  }
  function playingDate() {
    if (hls && hls.playingDate) return hls.playingDate.getTime();
    if (!hls && video.getStartDate && video.getAttribute('data-playing')) {
      var start = video.getStartDate().getTime();
      if (!isNaN(start)) return start + video.currentTime * 1000;
    }
    return null;
  }
  function behind() {
    var at = playingDate();
    if (at === null || video.paused) {
      latency.textContent = '';
      latency.removeAttribute('data-ms');
      return;
    }
    var ms = Math.max(0, Date.now() - at);
    latency.setAttribute('data-ms', String(Math.round(ms)));
    latency.textContent = (ms / 1000).toFixed(1) + ' s behind live';
  }
  setInterval(function () {
    uptime.textContent = since ? 'live for ' + fmt((Date.now() - since) / 1000) : '';
    behind();
  }, 1000);
  setInterval(poll, 2000);
  setInterval(beat, 15000);
  poll();
})();
"#
);

/// The chat panel's script: one WebSocket to the channel's room, reconnecting with a growing
/// pause. Every message is put on the page with `textContent` — never as HTML. Moderators (the
/// streamer, admins) get delete and timeout buttons on each message.
pub const CHAT_JS: &str = concat!(
    r#"(function () {
  var root = document.querySelector('[data-channel]');
  var log = document.getElementById('chat-log');
  if (!root || !log) return;
  var user = root.getAttribute('data-channel');
  var form = document.getElementById('chat-form');
  var input = document.getElementById('chat-input');
  var note = document.getElementById('chat-note');
"#,
    share_code_js!(),
    r#"  var ws = null, me = null, moderator = false, pause = 1000;
  window.boltstreamChat = { received: [] };
  function say(text) { note.textContent = text; }
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }
  function button(label, onclick) {
    var b = document.createElement('button');
    b.type = 'button'; b.className = 'chat-mod'; b.textContent = label; b.onclick = onclick;
    return b;
  }
  function add(m) {
    if (document.getElementById('chat-' + m.id)) return;
    var li = document.createElement('li');
    li.id = 'chat-' + m.id;
    li.setAttribute('data-id', String(m.id));
    var who = document.createElement('b');
    who.textContent = m.user;
    var body = document.createElement('span');
    body.className = 'chat-body';
    body.textContent = ' ' + m.body;
    li.appendChild(who); li.appendChild(body);
    if (moderator && m.user !== me) {
      li.appendChild(button('delete', function () { send({ type: 'delete', id: m.id }); }));
      li.appendChild(button('timeout', function () { send({ type: 'timeout', user: m.user, seconds: 600 }); }));
      li.appendChild(button('ban', function () { send({ type: 'ban', user: m.user }); }));
    } else if (moderator) {
      li.appendChild(button('delete', function () { send({ type: 'delete', id: m.id }); }));
    }
    log.appendChild(li);
    while (log.children.length > 200) log.removeChild(log.firstChild);
    log.scrollTop = log.scrollHeight;
    window.boltstreamChat.received.push(m.id);
  }
  function connect() {
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/api/v1/channels/' + user + '/chat');
    ws.onopen = function () { pause = 1000; if (share) send({ type: 'hello', share: share }); };
    ws.onmessage = function (e) {
      var f; try { f = JSON.parse(e.data); } catch (x) { return; }
      if (f.type === 'welcome') {
        me = f.you; moderator = f.moderator;
        while (log.firstChild) log.removeChild(log.firstChild);
        f.history.forEach(add);
        form.hidden = !me;
        say(me ? '' : 'Sign in to chat.');
      } else if (f.type === 'message') {
        add(f);
      } else if (f.type === 'deleted') {
        var gone = document.getElementById('chat-' + f.id);
        if (gone) gone.parentNode.removeChild(gone);
      } else if (f.type === 'muted' && f.user === me) {
        say(f.until_ms ? 'You are timed out.' : 'You are banned from this chat.');
      } else if (f.type === 'unmuted' && f.user === me) {
        say('');
      } else if (f.type === 'notice') {
        say(f.text);
      }
    };
    ws.onclose = function () {
      form.hidden = true;
      setTimeout(connect, pause);
      pause = Math.min(pause * 2, 30000);
    };
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    send({ type: 'send', body: text });
    input.value = '';
  });
  connect();
})();
"#
);

/// The stylesheet: small, readable, works on a phone.
pub const STYLE_CSS: &str = r#":root{--bg:#0e0e10;--panel:#18181b;--line:#2f2f35;--text:#efeff1;--muted:#adadb8;--accent:#9147ff;--live:#eb0400}
*{box-sizing:border-box}[hidden]{display:none!important}body{margin:0;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}
a{color:#bf94ff;text-decoration:none}a:hover{text-decoration:underline}
header{display:flex;align-items:center;gap:1rem;padding:.75rem 1.25rem;background:var(--panel);border-bottom:1px solid var(--line);flex-wrap:wrap}
header .brand{font-weight:800;font-size:1.2rem;color:var(--text);letter-spacing:.02em}header .brand span{color:var(--accent)}
header nav{margin-left:auto;display:flex;gap:1rem;align-items:center}
main{max-width:1100px;margin:0 auto;padding:1.5rem 1.25rem}
h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.2rem;margin:1.5rem 0 .75rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:1rem}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:1rem}
.card.channel{display:block;color:var(--text)}.card.channel:hover{border-color:var(--accent);text-decoration:none}
.thumb{aspect-ratio:16/9;border-radius:6px;background:linear-gradient(135deg,#2a1f47,#111);display:flex;align-items:center;justify-content:center;font-size:2rem;font-weight:800;color:#fff;margin-bottom:.6rem;position:relative;overflow:hidden}
.thumb img{position:absolute;inset:0;width:100%;height:100%;object-fit:cover;background:#000}
.muted{color:var(--muted)}.small{font-size:.875rem}
.title{font-weight:600;overflow-wrap:anywhere;margin:.15rem 0}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:4px;background:#3a3a3d;color:#fff;font-size:.75rem;font-weight:700;letter-spacing:.05em}
.badge.live{background:var(--live)}
.watch{display:grid;grid-template-columns:minmax(0,1fr) 320px;gap:1rem;align-items:start}@media (max-width:900px){.watch{grid-template-columns:1fr}}
.chat{background:var(--panel);border:1px solid var(--line);border-radius:10px;display:flex;flex-direction:column;height:min(70vh,560px)}
.chat-head{padding:.6rem .9rem;border-bottom:1px solid var(--line);font-weight:700}
.chat-log{list-style:none;margin:0;padding:.5rem .9rem;overflow-y:auto;flex:1;font-size:.92rem;overflow-wrap:anywhere}.chat-log li{padding:.15rem 0}.chat-log b{color:#bf94ff}
.chat-mod{margin-left:.4rem;padding:0 .35rem;font-size:.72rem;background:transparent;border:1px solid var(--line);color:var(--muted);border-radius:4px;cursor:pointer}
#chat-note{padding:0 .9rem;margin:.2rem 0}.chat-form{display:flex;gap:.4rem;padding:.6rem .9rem;border-top:1px solid var(--line)}.chat-form input{flex:1;margin:0}
.player{background:#000;border-radius:10px;overflow:hidden;aspect-ratio:16/9;display:flex;align-items:center;justify-content:center}
.player video{width:100%;height:100%;background:#000}
.offline{text-align:center;padding:2rem}.offline .big{font-size:1.4rem;font-weight:700}
.mt{margin-top:1rem}
.row{display:flex;gap:.75rem;align-items:center;flex-wrap:wrap}
form.inline{display:inline}
input[type=text],input[type=password]{width:100%;padding:.6rem .7rem;border-radius:6px;border:1px solid var(--line);background:#0e0e10;color:var(--text);font-size:1rem}
label{display:block;margin:.75rem 0 .25rem;color:var(--muted);font-size:.9rem}
button,.button{background:var(--accent);color:#fff;border:0;border-radius:6px;padding:.55rem 1rem;font-weight:700;cursor:pointer;font-size:.95rem}
button.secondary{background:#3a3a3d}button.danger{background:#b3261e}
.narrow{max-width:420px;margin:2rem auto}
code,.secret{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;background:#0e0e10;border:1px solid var(--line);border-radius:6px;padding:.15rem .4rem;word-break:break-all}
.secret{display:block;padding:.6rem;margin:.5rem 0;border-color:var(--accent)}
.notice{border-left:4px solid var(--accent);padding:.75rem 1rem;background:#1f1a2e;border-radius:6px;margin:1rem 0}
.error{border-left-color:#b3261e;background:#2e1a1a}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.5rem;border-bottom:1px solid var(--line)}th{color:var(--muted);font-weight:600;font-size:.85rem}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:.75rem}.stats div{background:#0e0e10;border:1px solid var(--line);border-radius:8px;padding:.6rem}.stats b{display:block;font-size:1.1rem}
@media (max-width:600px){main{padding:1rem .75rem}h1{font-size:1.3rem}header nav{margin-left:0}}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn embedded_hls_js_matches_its_recorded_checksum() {
        let digest = Sha256::digest(HLS_JS);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let recorded = HLS_JS_SHA256.split_whitespace().next().unwrap();
        assert_eq!(
            hex, recorded,
            "ingest/assets/hls.min.js changed without scripts/refresh-hlsjs"
        );
        assert!(HLS_JS_LICENSE.contains("Apache License") || HLS_JS_LICENSE.contains("Copyright"));
    }
}
