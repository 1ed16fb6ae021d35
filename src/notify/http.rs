//! A minimal HTTP/1.1 client for Slack and webhooks: one `POST` of a JSON
//! body per connection (`Connection: close`), over [`super::net`] (TLS
//! for `https://`). No proxies, no redirects (a 3xx is an error: a webhook
//! that moved is a configuration error, and following it could carry an
//! `Authorization` header elsewhere), no compression.
//!
//! Bounds: the whole exchange has one deadline; the answer's head is read
//! up to [`MAX_HEAD`] bytes and its body up to
//! [`crate::limits::NOTIFY_MAX_RESPONSE`] (the rest is not read).

use super::SendError;
use super::net::{self, Stream};
use crate::limits::NOTIFY_MAX_RESPONSE;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest status line and headers of an answer: real ones are under 2 KiB.
const MAX_HEAD: usize = 16 * 1024;

/// The parts of an `http(s)://` URL a request needs.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    tls: bool,
    host: &'a str,
    port: u16,
    /// `host[:port]` as written (the Host header, and error texts).
    authority: &'a str,
    /// Path and query, at least `/`.
    target: &'a str,
}

fn parse_url(url: &str) -> Option<Url<'_>> {
    let (tls, rest) = match url.split_once("://")? {
        ("https", r) => (true, r),
        ("http", r) => (false, r),
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    let target = target.split('#').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, if after.is_empty() { default } else { after.strip_prefix(':')?.parse().ok()? })
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default),
        }
    };
    let target = if target.is_empty() { "/" } else { target };
    (!host.is_empty()).then_some(Url { tls, host, port, authority, target })
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A chunked body decoded as far as it is complete: (bytes, finished).
fn dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(b, b"\r\n") else { return (out, false) };
        let size =
            std::str::from_utf8(&b[..eol]).ok().and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else { return (out, true) };
        if size == 0 {
            return (out, true);
        }
        let start = eol + 2;
        let Some(chunk) = b.get(start..start.saturating_add(size)) else {
            out.extend_from_slice(&b[start.min(b.len())..]);
            return (out, false);
        };
        out.extend_from_slice(chunk);
        b = b.get(start + size + 2..).unwrap_or(&[]);
    }
}

/// POSTs `body` as JSON to `url` with `headers`, within `timeout`; answers
/// the status and (lossy UTF-8) body. Error texts name only the URL's
/// host and port (its path and query may be secret).
pub(crate) fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<(u16, String), SendError> {
    let u = parse_url(url).ok_or_else(|| SendError::Config("not an http:// or https:// URL".into()))?;
    let deadline = Instant::now() + timeout;
    let fail = |what: &str, e: &dyn std::fmt::Display| SendError::Transport(format!("{}: {what}: {e}", u.authority));
    let mut s = net::connect(u.host, u.port, deadline).map_err(|e| fail("connect", &e))?;
    if u.tls {
        let tls = tls.ok_or_else(|| SendError::Config("no TLS configuration".into()))?;
        s = s.into_tls(u.host, tls, deadline).map_err(|e| fail("TLS", &e))?;
    }
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: postlens/{}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        u.target,
        u.authority,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    s.arm(deadline).and_then(|()| s.write_all(&out)).and_then(|()| s.flush()).map_err(|e| fail("sending", &e))?;
    read_answer(&mut s, deadline).map_err(|e| fail("reading the answer", &e))
}

/// Reads a status line, headers and as much body as the headers announce.
fn read_answer(s: &mut Stream, deadline: Instant) -> Result<(u16, String), String> {
    let max_body = usize::try_from(NOTIFY_MAX_RESPONSE).unwrap_or(usize::MAX);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut head_end = None;
    let (mut status, mut length, mut chunked) = (0, None, false);
    loop {
        if head_end.is_none()
            && let Some(end) = find(&buf, b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&buf[..end]);
            let mut lines = head.split("\r\n");
            let first = lines.next().unwrap_or("");
            status = first
                .strip_prefix("HTTP/1.")
                .and_then(|r| r.get(2..5))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("not an HTTP answer: {}", super::format::cut(first, 80)))?;
            for l in lines {
                let Some((k, v)) = l.split_once(':') else { continue };
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
            head_end = Some(end + 4);
        }
        if let Some(start) = head_end {
            let got = &buf[start..];
            let done = if chunked { dechunk(got).1 } else { length.is_some_and(|n| got.len() >= n) };
            if done || got.len() >= max_body {
                break;
            }
        } else if buf.len() > MAX_HEAD {
            return Err("answer head longer than 16 KiB".into());
        }
        let n = match s.arm(deadline).and_then(|()| s.read(&mut chunk)) {
            Ok(n) => n,
            // A server may drop the connection without TLS's close_notify
            // once it has answered: keep what came.
            Err(_) if head_end.is_some() => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            if head_end.is_none() {
                return Err("the connection closed before an answer".into());
            }
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let start = head_end.unwrap_or(buf.len());
    let mut body = if chunked { dechunk(&buf[start..]).0 } else { buf[start..].to_vec() };
    body.truncate(length.unwrap_or(usize::MAX).min(max_body));
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A 2xx is success; anything else is [`SendError::Status`] with the start
/// of the body (a webhook's reason, e.g. Slack's `invalid_token`).
pub(crate) fn expect_2xx((status, body): (u16, String)) -> Result<String, SendError> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        let body: String = body.trim().chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
        Err(SendError::Status { status, body })
    }
}

/// Slack's Web API answers 200 with `{"ok": false, "error": "…"}` on failure.
pub(crate) fn slack_ok(body: &str) -> Result<(), SendError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
    }
    match serde_json::from_str::<Answer>(body) {
        Ok(Answer { ok: true, .. }) => Ok(()),
        Ok(Answer { error, .. }) => {
            let e: String = error.unwrap_or_else(|| "no reason given".into()).chars().take(100).filter(|c| !c.is_control()).collect();
            Err(SendError::Slack(e))
        }
        Err(_) => Err(SendError::Slack(format!("not a Slack API answer: {}", super::format::cut(body.trim(), 100)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("https://hooks.slack.com/services/T0/B0/x?y=1#f").unwrap();
        assert_eq!(u, Url { tls: true, host: "hooks.slack.com", port: 443, authority: "hooks.slack.com", target: "/services/T0/B0/x?y=1" });
        let u = parse_url("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.host, u.port, u.target), ("127.0.0.1", 8080, "/"));
        let u = parse_url("https://[::1]:8443?token=a").unwrap();
        assert_eq!((u.host, u.port, u.authority, u.target), ("::1", 8443, "[::1]:8443", "?token=a"));
        for bad in ["ftp://x/", "https://", "https://user:pw@h/", "http://h:port/", "https://[::1/"] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
        assert_eq!(parse_url("https://ntfy.example:8443/topic?auth=secret").unwrap().authority, "ntfy.example:8443");
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(dechunk(b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n"), (b"Wikipedia".to_vec(), true));
        assert_eq!(dechunk(b"4\r\nWi"), (b"Wi".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\n"), (Vec::new(), true), "garbage ends the body");
    }

    /// Serves one connection with `answer`, returning what it read.
    fn once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook?k=v", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 4096];
            while find(&got, b"\r\n\r\n").is_none_or(|e| got.len() < e + 4 + 2) {
                let n = c.read(&mut b).unwrap();
                got.extend_from_slice(&b[..n]);
            }
            c.write_all(answer).unwrap();
            // Keeps the connection open: the client must stop at the length.
            std::thread::sleep(Duration::from_millis(300));
            got
        });
        (url, h)
    }

    #[test]
    fn a_request_and_its_answer() {
        let (url, h) = once(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello and more");
        let r = post_json(&url, &[("X-Key", "v")], b"{}", None, Duration::from_secs(5)).unwrap();
        assert_eq!(r, (201, "hello".into()));
        let req = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(req.starts_with("POST /hook?k=v HTTP/1.1\r\nHost: 127.0.0.1:"), "{req}");
        assert!(req.contains("\r\nContent-Length: 2\r\nConnection: close\r\nX-Key: v\r\n\r\n{}"), "{req}");
        let (url, _h) = once(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ninvalid\r\n8\r\n_payload\r\n0\r\n\r\n");
        let r = post_json(&url, &[], b"{}", None, Duration::from_secs(5)).unwrap();
        assert_eq!(expect_2xx(r), Err(SendError::Status { status: 400, body: "invalid_payload".into() }));
    }

    #[test]
    fn slack_answers() {
        assert_eq!(slack_ok(r#"{"ok":true,"channel":"C1","ts":"1.2"}"#), Ok(()));
        assert_eq!(slack_ok(r#"{"ok":false,"error":"channel_not_found"}"#), Err(SendError::Slack("channel_not_found".into())));
        assert!(matches!(slack_ok("<html>"), Err(SendError::Slack(e)) if e.contains("not a Slack API answer")));
    }
}
