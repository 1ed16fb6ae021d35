//! The Dovecot auth policy server: `POST /dovecot/policy?command=allow|report`
//! with Dovecot's JSON, answered from memory on one thread of its own.
//!
//! Protocol (Dovecot's `auth_policy_*` settings): attribute values are
//! strings except the booleans `success`, `policy_reject` and `tls`; names
//! with `/` arrive as nested objects (ignored here, as is every attribute
//! not named below). The reply is `{"status":N,"msg":"…"}`: -1 rejects
//! (always exactly -1: through Dovecot 2.3.4 only -1 rejects), 0 allows,
//! N > 0 delays N seconds. Dovecot ignores the reply to `report`, and
//! treats a non-2xx answer as "allow" unless `auth_policy_reject_on_fail`.
//!
//! Bounds: bodies over `PROTECT_MAX_REQUEST_BYTES` are refused with 413 and
//! read no further. An optional key is compared in constant time with the
//! `X-API-Key` header (Dovecot sends `auth_policy_server_api_header =
//! X-API-Key:KEY` as that header).

use super::{Failure, IpKey, Protect, Shared, Source, Verdict, lock};
use crate::clock::Timestamp;
use crate::limits::PROTECT_MAX_REQUEST_BYTES;
use crate::track::Proto;
use serde::Deserialize;
use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

/// The path Dovecot's `auth_policy_server_url` points at.
pub const PATH: &str = "/dovecot/policy";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8089";

/// The attributes used; Dovecot sends more (and what the admin adds).
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    remote: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    login: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pwhash: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "flag")]
    success: Option<bool>,
    #[serde(default, deserialize_with = "flag")]
    policy_reject: Option<bool>,
}

/// A boolean, also when a proxy in between turned it into `"true"`.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B<'a> {
        B(bool),
        S(&'a str),
    }
    Ok(match Option::<B<'_>>::deserialize(d)? {
        Some(B::B(b)) => Some(b),
        Some(B::S(s)) => Some(s.eq_ignore_ascii_case("true") || s == "1"),
        None => None,
    })
}

fn proto(p: &str) -> Proto {
    match p {
        "imap" => Proto::Imap,
        "pop3" => Proto::Pop3,
        "smtp" | "submission" => Proto::Smtp,
        _ => Proto::Other,
    }
}

/// An HTTP status and a JSON body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

fn json(status: i32, msg: &str) -> Answer {
    let body = serde_json::json!({ "status": status, "msg": msg }).to_string();
    Answer { status: 200, body }
}

fn error(status: u16, msg: &str) -> Answer {
    Answer { status, body: serde_json::json!({ "error": msg }).to_string() }
}

/// Answers one request (`command` from the query string, `body` the JSON).
pub fn answer(p: &mut Protect, command: &str, body: &[u8], now: Timestamp) -> Answer {
    let req: Request<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return error(400, &format!("the body is not Dovecot's policy JSON object: {e}")),
    };
    let ip = req.remote.as_deref().and_then(|r| IpKey::parse(r.as_bytes()));
    match command {
        "allow" => match ip.map_or(Verdict::Allow, |k| p.check(k, now)) {
            Verdict::Allow => json(0, ""),
            Verdict::Delay(n) => json(i32::try_from(n).unwrap_or(i32::MAX), "postlens: too many failed logins, slowing down"),
            Verdict::Reject { .. } => json(-1, "postlens: blocked after too many failed logins"),
        },
        "report" => {
            if let Some(k) = ip {
                match (req.success, req.policy_reject) {
                    (Some(true), _) => p.success(k, now),
                    // A failure caused by our own refusal is no new evidence.
                    (Some(false), Some(true)) | (None, _) => {}
                    (Some(false), _) => {
                        let f = Failure {
                            login: req.login.as_deref().unwrap_or("").as_bytes(),
                            pwhash: req.pwhash.as_deref().unwrap_or("").as_bytes(),
                            proto: proto(req.protocol.as_deref().unwrap_or("")),
                            count: 1,
                            source: Source::Policy,
                        };
                        p.failure(k, &f, now);
                    }
                }
            }
            json(0, "")
        }
        other => error(400, &format!("unknown command '{other}' (Dovecot sends allow or report)")),
    }
}

/// The running server; [`PolicyServer::stop`] ends its thread.
pub struct PolicyServer {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PolicyServer {
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.server.server_addr().to_ip()
    }

    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the server on `addr`, answering from `shared`; requests must
/// carry `X-API-Key: key` when `key` is set.
///
/// # Errors
/// The address cannot be bound.
pub fn serve(addr: std::net::SocketAddr, shared: Shared, key: Option<String>) -> std::io::Result<PolicyServer> {
    let server = Arc::new(tiny_http::Server::http(addr).map_err(std::io::Error::other)?);
    let s = server.clone();
    let thread = std::thread::Builder::new().name("postlens-policy".into()).spawn(move || {
        let mut buf = Vec::with_capacity(PROTECT_MAX_REQUEST_BYTES + 1);
        for mut r in s.incoming_requests() {
            let a = route(&mut r, &shared, key.as_deref(), &mut buf);
            let ctype = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).ok();
            let mut resp = tiny_http::Response::from_string(a.body).with_status_code(a.status);
            if let Some(h) = ctype {
                resp.add_header(h);
            }
            let _ = r.respond(resp);
        }
    })?;
    Ok(PolicyServer { server, thread: Some(thread) })
}

fn route(r: &mut tiny_http::Request, shared: &Shared, key: Option<&str>, buf: &mut Vec<u8>) -> Answer {
    let (path, query) = r.url().split_once('?').unwrap_or((r.url(), ""));
    if path.trim_end_matches('/') != PATH {
        return error(404, "not found: Dovecot's auth_policy_server_url should end in /dovecot/policy");
    }
    if *r.method() != tiny_http::Method::Post {
        return error(405, "use POST");
    }
    let command = query.split('&').find_map(|kv| kv.strip_prefix("command=")).unwrap_or("").to_owned();
    if let Some(key) = key {
        use ctutils::CtEq as _;
        let sent = r.headers().iter().find(|h| h.field.equiv("X-API-Key")).map_or("", |h| h.value.as_str().trim());
        if !(sent.len() == key.len() && bool::from(sent.as_bytes().ct_eq(key.as_bytes()))) {
            return error(401, "missing or wrong X-API-Key (auth_policy_server_api_header)");
        }
    }
    buf.clear();
    if r.as_reader().take(PROTECT_MAX_REQUEST_BYTES as u64 + 1).read_to_end(buf).is_err() {
        return error(400, "the body could not be read");
    }
    if buf.len() > PROTECT_MAX_REQUEST_BYTES {
        return error(413, "the body is larger than a policy request can be");
    }
    answer(&mut lock(shared), &command, buf, crate::clock::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::ProtectConfig;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    fn report(p: &mut Protect, remote: &str, login: &str, pwhash: &str, success: bool) -> Answer {
        // As Dovecot 2.3 sends it with the default attributes.
        let body = format!(
            r#"{{"login":"{login}","pwhash":"{pwhash}","remote":"{remote}","device_id":"","protocol":"imap","session_id":"x1","tls":true,"success":{success},"policy_reject":false}}"#
        );
        answer(p, "report", body.as_bytes(), NOW)
    }

    fn allow(p: &mut Protect, remote: &str) -> Answer {
        let body = format!(r#"{{"login":"bob","pwhash":"","remote":"{remote}","device_id":"","protocol":"imap","attrs":{{"cos":"x"}}}}"#);
        answer(p, "allow", body.as_bytes(), NOW)
    }

    #[test]
    fn brute_force_is_refused_with_exactly_minus_one() {
        let mut p = Protect::new(ProtectConfig::default()).expect("config");
        assert_eq!(allow(&mut p, "203.0.113.5"), Answer { status: 200, body: r#"{"msg":"","status":0}"#.into() });
        for i in 0..10 {
            assert_eq!(report(&mut p, "203.0.113.5", "bob", &format!("{:012x}", i % 4), false).status, 200);
        }
        let a = allow(&mut p, "203.0.113.5");
        let v: serde_json::Value = serde_json::from_str(&a.body).expect("json");
        assert_eq!(v["status"], -1);
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }

    #[test]
    fn suspicious_is_delayed_and_success_is_recorded() {
        let mut p = Protect::new(ProtectConfig::default()).expect("config");
        for _ in 0..6 {
            report(&mut p, "203.0.113.6", "carol", "aaaaaaaaaaaa", false);
        }
        let v: serde_json::Value = serde_json::from_str(&allow(&mut p, "203.0.113.6").body).expect("json");
        assert_eq!(v["status"], 2);
        report(&mut p, "203.0.113.6", "carol", "bbbbbbbbbbbb", true);
        assert_eq!(p.exempt(IpKey::parse(b"203.0.113.6").expect("ip"), NOW), Some(crate::protect::Exempt::RecentLogin));
        assert_eq!(allow(&mut p, "203.0.113.6").body, r#"{"msg":"","status":0}"#);
    }

    #[test]
    fn our_own_refusals_are_not_counted_again() {
        let mut p = Protect::new(ProtectConfig::default()).expect("config");
        for i in 0..20 {
            let body = format!(r#"{{"login":"u{i}","pwhash":"{i}","remote":"203.0.113.7","success":false,"policy_reject":true}}"#);
            answer(&mut p, "report", body.as_bytes(), NOW);
        }
        assert_eq!(p.stats().failures, 0);
        // Booleans quoted by a proxy still count.
        let body = r#"{"login":"u","pwhash":"1","remote":"203.0.113.7","success":"false"}"#;
        answer(&mut p, "report", body.as_bytes(), NOW);
        assert_eq!(p.stats().failures, 1);
    }

    #[test]
    fn malformed_requests_get_400_with_a_reason() {
        let mut p = Protect::new(ProtectConfig::default()).expect("config");
        for body in [&b"{not json"[..], b"[1,2]", b"", b"{\"remote\": 5}", b"\xff\xfe"] {
            let a = answer(&mut p, "allow", body, NOW);
            assert_eq!(a.status, 400, "{body:?}");
            assert!(a.body.contains("Dovecot's policy JSON"), "{}", a.body);
        }
        assert_eq!(answer(&mut p, "frobnicate", b"{}", NOW).status, 400);
        // No usable address: allowed, nothing recorded.
        assert_eq!(answer(&mut p, "allow", br#"{"remote":"unknown"}"#, NOW).body, r#"{"msg":"","status":0}"#);
        assert_eq!(p.sizes(), (0, 0));
    }
}
