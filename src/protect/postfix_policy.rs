//! The Postfix policy delegation server (`check_policy_service`), for
//! sites whose Postfix does not use Dovecot for SASL: an SMTP client on the
//! blocklist is refused at connect, before it can guess passwords.
//!
//! Protocol (Postfix's `SMTPD_POLICY_README`): the client sends `name=value`
//! lines ending with an empty line; the server answers `action=...` and an
//! empty line, on the same connection, which Postfix keeps open for more
//! requests. Answers: `REJECT 5.7.1 …` for a blocked `client_address`,
//! `SLEEP n` for a suspicious one, `DUNNO` (no opinion) otherwise and for
//! any request it does not understand: a policy server must never make
//! Postfix fail mail it cannot judge. A request carrying `sasl_username`
//! reports a successful login, which makes the address trusted.
//!
//! Bounds: at most `POSTFIX_POLICY_MAX_CONNECTIONS` connections at once
//! (one thread each; Postfix opens one per busy smtpd process), requests of
//! at most `PROTECT_MAX_REQUEST_BYTES`, idle connections closed after
//! `POSTFIX_POLICY_IDLE_SECS` (Postfix's own `max_idle` is 300 s).

use super::{IpKey, Shared, Verdict, lock};
use crate::clock::Timestamp;
use crate::limits::{POSTFIX_POLICY_IDLE_SECS, POSTFIX_POLICY_MAX_CONNECTIONS, PROTECT_MAX_REQUEST_BYTES};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The answer to one request.
pub fn answer(p: &mut super::Protect, request: &[(&[u8], &[u8])], now: Timestamp) -> String {
    let get = |name: &[u8]| request.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    if get(b"request") != Some(b"smtpd_access_policy".as_slice()) {
        return "action=DUNNO\n\n".into();
    }
    let Some(k) = get(b"client_address").and_then(IpKey::parse) else {
        return "action=DUNNO\n\n".into();
    };
    if get(b"sasl_username").is_some_and(|u| !u.is_empty()) {
        p.success(k, now);
    }
    match p.check(k, now) {
        Verdict::Allow => "action=DUNNO\n\n".into(),
        Verdict::Delay(s) => format!("action=SLEEP {s}\n\n"),
        Verdict::Reject { until } => {
            let until = jiff::Timestamp::from_second(until.0).map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
            format!("action=REJECT 5.7.1 Too many failed logins from this address; blocked until {until}\n\n")
        }
    }
}

/// The running server; [`PostfixPolicyServer::stop`] ends it.
pub struct PostfixPolicyServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PostfixPolicyServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; open connections end at their next request or
    /// idle timeout.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the server on `addr`.
///
/// # Errors
/// The address cannot be bound.
pub fn serve(addr: SocketAddr, shared: Shared) -> std::io::Result<PostfixPolicyServer> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let flag = stop.clone();
    let thread = std::thread::Builder::new().name("postlens-postfix-policy".into()).spawn(move || {
        for conn in listener.incoming() {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            if open.fetch_add(1, Ordering::SeqCst) >= POSTFIX_POLICY_MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let (shared, open, flag) = (shared.clone(), open.clone(), flag.clone());
            let spawned = std::thread::Builder::new().name("postlens-postfix-conn".into()).spawn(move || {
                let _ = session(conn, &shared, &flag);
                open.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                eprintln!("postlens: Postfix policy server: no thread for a connection");
            }
        }
    })?;
    Ok(PostfixPolicyServer { addr, stop, thread: Some(thread) })
}

/// Answers requests on one connection until it closes, idles out, sends
/// something that is not the protocol, or the server stops.
fn session(conn: TcpStream, shared: &Shared, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(POSTFIX_POLICY_IDLE_SECS)))?;
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::with_capacity(4096, conn);
    let mut req: Vec<u8> = Vec::with_capacity(1024);
    loop {
        req.clear();
        // Lines up to the empty one, the whole request bounded.
        loop {
            let before = req.len();
            let room = (PROTECT_MAX_REQUEST_BYTES + 1).saturating_sub(before) as u64;
            let n = (&mut r).take(room).read_until(b'\n', &mut req)?;
            if n == 0 {
                return Ok(());
            }
            if req.len() > PROTECT_MAX_REQUEST_BYTES {
                // Not Postfix: close rather than guess.
                return Ok(());
            }
            if req[before..] == *b"\n" || req[before..] == *b"\r\n" {
                break;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let attrs: Vec<(&[u8], &[u8])> = req
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter_map(|l| memchr::memchr(b'=', l).map(|i| (&l[..i], &l[i + 1..])))
            .collect();
        let a = answer(&mut lock(shared), &attrs, crate::clock::now());
        out.write_all(a.as_bytes())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::{Failure, Protect, ProtectConfig, Source};
    use crate::track::Proto;

    fn req(lines: &str) -> Vec<(&[u8], &[u8])> {
        lines.lines().filter_map(|l| l.split_once('=')).map(|(a, b)| (a.as_bytes(), b.as_bytes())).collect()
    }

    #[test]
    fn answers_per_verdict_and_never_fails_mail_it_cannot_judge() {
        let mut p = Protect::new(ProtectConfig::default()).expect("config");
        let now = Timestamp(1_700_000_000);
        let ip = IpKey::parse(b"203.0.113.9").expect("ip");
        for u in ["a", "b", "c", "d", "e"] {
            p.failure(ip, &Failure { login: u.as_bytes(), pwhash: b"", proto: Proto::Smtp, count: 1, source: Source::Log }, now);
        }
        let base = "request=smtpd_access_policy\nprotocol_state=CONNECT\nprotocol_name=SMTP\nserver_port=587\n";
        let a = answer(&mut p, &req(&format!("{base}client_address=203.0.113.9\n")), now);
        assert!(a.starts_with("action=REJECT 5.7.1 ") && a.ends_with("\n\n"), "{a}");
        assert_eq!(answer(&mut p, &req(&format!("{base}client_address=203.0.113.10\n")), now), "action=DUNNO\n\n");
        assert_eq!(answer(&mut p, &req(&format!("{base}client_address=nonsense\n")), now), "action=DUNNO\n\n");
        assert_eq!(answer(&mut p, &req("request=junk\nclient_address=203.0.113.9\n"), now), "action=DUNNO\n\n");
        // An authenticated request trusts its address.
        let other = IpKey::parse(b"203.0.113.20").expect("ip");
        answer(&mut p, &req(&format!("{base}client_address=203.0.113.20\nsasl_username=alice\n")), now);
        assert_eq!(p.exempt(other, now), Some(crate::protect::Exempt::RecentLogin));
    }

    #[test]
    fn serves_several_requests_per_connection_and_closes_on_garbage() {
        let mut p = Protect::new(ProtectConfig::default()).expect("config");
        p.block(IpKey::parse(b"198.51.100.7").expect("ip"), 600, crate::clock::now());
        let shared: Shared = Arc::new(std::sync::Mutex::new(p));
        let s = serve("127.0.0.1:0".parse().expect("addr"), shared).expect("bind");
        let mut c = TcpStream::connect(s.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut r = BufReader::new(c.try_clone().expect("clone"));
        for (ip, want) in [("198.51.100.7", "action=REJECT"), ("198.51.100.8", "action=DUNNO"), ("198.51.100.7", "action=REJECT")] {
            write!(c, "request=smtpd_access_policy\r\nprotocol_state=CONNECT\r\nclient_address={ip}\r\n\r\n").expect("write");
            let mut line = String::new();
            r.read_line(&mut line).expect("answer");
            assert!(line.starts_with(want), "{ip}: {line}");
            line.clear();
            r.read_line(&mut line).expect("empty line");
            assert_eq!(line, "\n");
        }
        // A request without end larger than the limit: the server hangs up.
        let junk = vec![b'x'; PROTECT_MAX_REQUEST_BYTES + 10];
        let _ = c.write_all(&junk);
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).map_or(0, |_| rest.len()), 0);
        s.stop();
    }
}
