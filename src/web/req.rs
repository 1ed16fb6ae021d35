//! One HTTP request, read and decoded once: method, path, query and form
//! fields, cookies, the client's address and the headers handlers need.
//!
//! Bounds: the body is read only up to `MAX_FORM_BODY` (a larger one is
//! refused with 413 before any handler runs); fields and cookies are
//! capped in number. Decoding never fails: malformed percent-escapes are
//! kept as they are, invalid UTF-8 is replaced.

use crate::limits::{MAX_FORM_BODY, MAX_FORM_FIELDS};
use std::io::Read;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Other,
}

pub(crate) struct Req {
    pub method: Method,
    /// The path without the query, percent-decoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    /// The client: the peer, or the first untrusted hop of
    /// `X-Forwarded-For` when the peer is a trusted proxy.
    pub client: Option<IpAddr>,
    /// Served over TLS (a trusted proxy said `X-Forwarded-Proto: https`).
    pub https: bool,
    pub bearer: Option<String>,
    /// `X-CSRF-Token`: how a page's script proves a cookie-authenticated
    /// API post comes from the UI.
    pub csrf_header: Option<String>,
    /// `Accept-Encoding` accepts gzip: static files and the `OpenAPI`
    /// document may be sent compressed.
    pub gzip: bool,
    /// The body of a POST (at most `MAX_FORM_BODY`).
    pub body: Vec<u8>,
}

/// Why a request was refused before reaching a handler.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReqError {
    TooLarge,
    BadBody,
}

impl Req {
    /// Reads `r`'s head and (bounded) body.
    ///
    /// # Errors
    /// The body is larger than `MAX_FORM_BODY` or cannot be read.
    pub fn read(r: &mut tiny_http::Request, trust_proxy: bool) -> Result<Req, ReqError> {
        let method = match r.method() {
            tiny_http::Method::Get => Method::Get,
            tiny_http::Method::Head => Method::Head,
            tiny_http::Method::Post => Method::Post,
            _ => Method::Other,
        };
        let url = r.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let headers = r.headers().to_vec();
        let header = |name: &'static str| headers.iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_owned());
        // Canonical: on a dual-stack `[::]` listener an IPv4 peer shows up
        // as `::ffff:127.0.0.1`, which is loopback all the same.
        let peer = r.remote_addr().map(|a| a.ip().to_canonical());
        // A unix-socket or loopback peer is the proxy when one is in use.
        let proxied = trust_proxy && peer.is_none_or(|p| p.is_loopback());
        let client = if proxied {
            header("X-Forwarded-For")
                .and_then(|v| v.rsplit(',').next().map(|s| s.trim().to_owned()))
                .and_then(|s| s.parse::<IpAddr>().ok())
                .map(|ip| ip.to_canonical())
                .or(peer)
        } else {
            peer
        };
        let https = proxied && header("X-Forwarded-Proto").is_some_and(|v| v.eq_ignore_ascii_case("https"));
        // The scheme name is case-insensitive (RFC 9110).
        let bearer = header("Authorization")
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim().to_owned()));
        let csrf_header = header("X-CSRF-Token").map(|t| t.trim().to_owned());
        let gzip = header("Accept-Encoding").is_some_and(|v| accepts_gzip(&v));
        let cookies = header("Cookie").map(|c| parse_cookies(&c)).unwrap_or_default();
        let mut form = Vec::new();
        let mut body = Vec::new();
        if method == Method::Post {
            if r.body_length().is_some_and(|n| n as u64 > MAX_FORM_BODY) {
                return Err(ReqError::TooLarge);
            }
            r.as_reader().take(MAX_FORM_BODY + 1).read_to_end(&mut body).map_err(|_| ReqError::BadBody)?;
            if body.len() as u64 > MAX_FORM_BODY {
                return Err(ReqError::TooLarge);
            }
            let is_form = header("Content-Type").is_none_or(|c| c.starts_with("application/x-www-form-urlencoded"));
            if is_form {
                form = parse_pairs(&String::from_utf8_lossy(&body));
            }
        }
        Ok(Req { method, path: decode(path), query: parse_pairs(query), form, cookies, client, https, bearer, csrf_header, gzip, body })
    }

    /// The first query value of `name`, trimmed; `None` when absent or empty.
    pub fn q(&self, name: &str) -> Option<&str> {
        get(&self.query, name)
    }

    /// The first form value of `name`, trimmed; `None` when absent or empty.
    pub fn f(&self, name: &str) -> Option<&str> {
        get(&self.form, name)
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// Whether an `Accept-Encoding` value (RFC 9110, 12.5.3) accepts gzip:
/// `gzip` (or its alias `x-gzip`) listed without a zero weight, or, when
/// neither is listed, `*` without one. A weight is zero when it has no
/// digit 1-9 (`q=0`, `q=0.000`); names are case-insensitive.
fn accepts_gzip(h: &str) -> bool {
    let mut star = false;
    for item in h.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let weighted = parts.find_map(|p| {
            let (name, value) = p.split_once('=')?;
            name.trim().eq_ignore_ascii_case("q").then_some(value)
        });
        let accepted = weighted.is_none_or(|q| q.bytes().any(|b| matches!(b, b'1'..=b'9')));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return accepted;
        }
        if coding == "*" {
            star = accepted;
        }
    }
    star
}

fn parse_cookies(h: &str) -> Vec<(String, String)> {
    h.split(';').filter_map(|c| c.split_once('=')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).take(MAX_FORM_FIELDS).collect()
}

/// `a=1&b=x%20y` pairs (also `+` for space), at most `MAX_FORM_FIELDS`.
pub(crate) fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .take(MAX_FORM_FIELDS)
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
        })
        .collect()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding; a malformed escape stays as written.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding for a query value.
pub(crate) fn encode(s: &str) -> String {
    encode_keeping(s, b"-_.~@")
}

/// Percent-encoding (`%XX`) of every byte but ASCII letters, digits and
/// those in `keep`.
pub(crate) fn encode_keeping(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            use std::fmt::Write as _;
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_and_malformed_escapes_survive() {
        let p = parse_pairs("a=1&b=x%20y+z&c=%zz%4&d&=e&sender=a%40b.example");
        assert_eq!(p[0], ("a".into(), "1".into()));
        assert_eq!(p[1], ("b".into(), "x y z".into()));
        assert_eq!(p[2], ("c".into(), "%zz%4".into()));
        assert_eq!(p[3], ("d".into(), String::new()));
        assert_eq!(p[4], (String::new(), "e".into()));
        assert_eq!(p[5].1, "a@b.example");
        assert_eq!(decode("%ff%fe"), "\u{fffd}\u{fffd}");
        let many = "x=1&".repeat(MAX_FORM_FIELDS * 2);
        assert_eq!(parse_pairs(&many).len(), MAX_FORM_FIELDS);
    }

    #[test]
    fn encode_round_trips() {
        for s in ["a b&c=d", "ü@x.example", "100%", ""] {
            assert_eq!(decode(&encode(s)), s);
        }
    }

    #[test]
    fn gzip_is_accepted_unless_weighted_zero() {
        for yes in ["gzip", "gzip, deflate, br", "br;q=1.0, GZip;q=0.5", "x-gzip", "*", "deflate, *;q=0.1", "gzip;q=0.001", "gzip ; Q = 1"]
        {
            assert!(accepts_gzip(yes), "{yes}");
        }
        for no in ["", "identity", "br, deflate", "gzip;q=0", "gzip;q=0.000, *", "*;q=0", "gzipx", "deflate;q=1"] {
            assert!(!accepts_gzip(no), "{no}");
        }
    }

    #[test]
    fn cookies_split() {
        let c = parse_cookies("a=1; pl_session=abc=; b = 2");
        assert_eq!(c[1], ("pl_session".into(), "abc=".into()));
        assert_eq!(c[2], ("b".into(), "2".into()));
    }
}
