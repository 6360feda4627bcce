//! A raw HTTP/1.1 client: the request target is sent byte for byte (traversal, invalid UTF-8, keys),
//! which ordinary clients refuse or normalise.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased (repeats folded with \", \").
    pub headers: HashMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method target` with extra header lines and an optional body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    request_on(stream, method, target, headers, body)
}

/// [`request`] from another loopback address (`127.0.0.2`, ...), as a second client would.
pub fn request_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    request_on(socket.into(), method, target, headers, body)
}

fn request_on(
    mut stream: TcpStream,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() {
        req.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    stream.write_all(&req)?;
    // Read the head, then exactly Content-Length bytes (some servers ignore `connection: close`),
    // or to EOF when there is no length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        // A signal to the test process (a child's exit, say) interrupts a plain `read`; it is
        // not the server's doing, so the read is retried, as `read_to_end` would.
        let n = match stream.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            n => n?,
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let no_body = method == "HEAD"
                || head.starts_with("http/1.1 304")
                || head.starts_with("http/1.1 204");
            match length {
                _ if no_body => break,
                Some(len) if raw.len() >= end + 4 + len => break,
                _ => {}
            }
        }
    }
    parse(&raw, method == "HEAD")
}

/// `GET target`.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target.as_bytes(), &[], b"")
        .unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

fn parse(raw: &[u8], head: bool) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head_text = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers: HashMap<String, String> = HashMap::new();
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        // Repeated headers (Set-Cookie) are folded with ", ".
        headers
            .entry(k.trim().to_ascii_lowercase())
            .and_modify(|e| *e = format!("{e}, {}", v.trim()))
            .or_insert_with(|| v.trim().to_string());
    }
    let mut body = raw[split + 4..].to_vec();
    if head {
        body.clear();
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// The CSRF token of a form page (the hidden `csrf` field, 64 hex characters).
pub fn csrf_field(page: &str) -> Option<&str> {
    let start = page.find("name=\"csrf\" value=\"")? + 19;
    page.get(start..start + 64)
}

/// Posts the website's log-in form as a browser at `source` would: fetches the form for its CSRF
/// token, then posts it with the token's cookie, `cookies` (e.g. `bs_device=…`) and `extra`
/// headers.
pub fn log_in_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    user: &str,
    password: &str,
    cookies: Option<&str>,
    extra: &[(&str, &str)],
) -> std::io::Result<Response> {
    let form = request_from(source, addr, "GET", b"/login", extra, b"")?;
    let page = form.text();
    let csrf = csrf_field(&page).ok_or_else(|| std::io::Error::other("no csrf field"))?;
    let cookie = match cookies {
        Some(more) => format!("bs_csrf={csrf}; {more}"),
        None => format!("bs_csrf={csrf}"),
    };
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie.as_str()),
    ];
    headers.extend_from_slice(extra);
    let body = format!("csrf={csrf}&username={user}&password={password}");
    request_from(source, addr, "POST", b"/login", &headers, body.as_bytes())
}

/// Posts the website's sign-up form as a browser at `source` would.
pub fn sign_up_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> std::io::Result<Response> {
    let page = request_from(source, addr, "GET", b"/signup", &[], b"")?.text();
    let csrf = csrf_field(&page).ok_or_else(|| std::io::Error::other("no csrf field"))?;
    let cookie = format!("bs_csrf={csrf}");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie.as_str()),
    ];
    let body = format!("csrf={csrf}&username={user}&password={password}");
    request_from(source, addr, "POST", b"/signup", &headers, body.as_bytes())
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
pub fn set_cookie_value(response: &Response, name: &str) -> Option<String> {
    let all = response.header("set-cookie")?;
    let prefix = format!("{name}=");
    all.split([';', ','])
        .find_map(|p| p.trim().strip_prefix(prefix.as_str()))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
