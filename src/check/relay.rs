//! The opt-in open-relay probe: connects to the server's own SMTP port,
//! says EHLO, `MAIL FROM:<>`, `RCPT TO:` an address at a domain that is not
//! the server's, and aborts with RSET and QUIT before DATA, so no message
//! is ever queued. A 2xx answer to RCPT means the server would relay.
//!
//! Bounds: each reply is read up to [`MAX_REPLY`] bytes; the whole
//! conversation has a deadline.

use super::{Check, Status};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Longest multi-line reply read (EHLO lists a few hundred bytes).
const MAX_REPLY: usize = 16 * 1024;
/// The address the probe asks to relay to: outside any domain of the
/// server (RFC 2606 reserves example.net; no mail can reach it).
pub const PROBE_RCPT: &str = "postlens-relay-probe@example.net";

/// Reads one SMTP reply: its code and text.
fn reply(r: &mut BufReader<TcpStream>, deadline: Instant) -> Result<(u16, String), String> {
    let mut text = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the server stopped answering".into());
        }
        r.get_ref().set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        let mut line = String::new();
        let n = std::io::Read::take(&mut *r, 1024).read_line(&mut line).map_err(|e| format!("reading the reply: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        text.push_str(line.trim_end());
        text.push(' ');
        if text.len() > MAX_REPLY {
            return Err("reply too long".into());
        }
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| format!("not an SMTP reply: {}", line.trim_end()))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text.trim_end().to_owned()));
        }
    }
}

fn say(r: &mut BufReader<TcpStream>, cmd: &str, deadline: Instant) -> Result<(u16, String), String> {
    r.get_mut().write_all(format!("{cmd}\r\n").as_bytes()).map_err(|e| format!("sending {cmd}: {e}"))?;
    reply(r, deadline)
}

/// What the server did with the relay attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// RCPT accepted (code, text), from local address `from`.
    Relayed { reply: String, from: IpAddr },
    /// Refused as relaying (`Relay access denied`, 5.7.1, or any 5xx/4xx
    /// to RCPT naming relaying).
    Refused(String),
    /// Refused, but for another reason (HELO, sender, greylisting): the
    /// relay rule was not reached.
    Inconclusive(String),
}

/// Runs the probe against `addr` with EHLO `helo`.
///
/// # Errors
/// No connection or no SMTP conversation.
pub fn probe(addr: SocketAddr, helo: &str, timeout: Duration) -> Result<Outcome, String> {
    let deadline = Instant::now() + timeout;
    let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let from = s.local_addr().map_err(|e| e.to_string())?.ip();
    let mut r = BufReader::new(s);
    let (code, text) = reply(&mut r, deadline)?;
    if code != 220 {
        return Ok(Outcome::Inconclusive(format!("greeting: {text}")));
    }
    let (code, text) = say(&mut r, &format!("EHLO {helo}"), deadline)?;
    if code != 250 {
        let _ = say(&mut r, "QUIT", deadline);
        return Ok(Outcome::Inconclusive(format!("EHLO: {text}")));
    }
    let (code, text) = say(&mut r, "MAIL FROM:<>", deadline)?;
    if code != 250 {
        let _ = say(&mut r, "QUIT", deadline);
        return Ok(Outcome::Inconclusive(format!("MAIL FROM: {text}")));
    }
    let (code, text) = say(&mut r, &format!("RCPT TO:<{PROBE_RCPT}>"), deadline)?;
    // Abort before DATA: nothing is queued either way.
    let _ = say(&mut r, "RSET", deadline);
    let _ = say(&mut r, "QUIT", deadline);
    let lower = text.to_ascii_lowercase();
    Ok(if (200..300).contains(&code) {
        Outcome::Relayed { reply: text, from }
    } else if lower.contains("relay") || lower.contains("5.7.1") {
        Outcome::Refused(text)
    } else {
        Outcome::Inconclusive(format!("RCPT TO: {text}"))
    })
}

/// `open_relay`: the probe's verdict. `trusted` says whether the probe's
/// own address is in `mynetworks` (then an accepted relay proves nothing
/// about strangers).
pub fn open_relay(addr: Option<SocketAddr>, helo: &str, timeout: Duration, trusted: &dyn Fn(IpAddr) -> bool) -> Check {
    let Some(addr) = addr else {
        return Check::new(
            "open_relay",
            "",
            Status::Skipped,
            "the open-relay probe is off (opt-in)",
            "Turn on the relay probe in Settings → Health, or pass --relay-probe HOST:PORT.",
        );
    };
    let t = addr.to_string();
    match probe(addr, helo, timeout) {
        Err(e) => Check::new(
            "open_relay",
            &t,
            Status::Skipped,
            format!("the probe could not talk to {addr}: {e}"),
            "Check that Postfix listens there, or give the right --relay-probe HOST:PORT.",
        ),
        Ok(Outcome::Refused(text)) => {
            Check::new("open_relay", &t, Status::Pass, format!("RCPT TO:<{PROBE_RCPT}> from {} refused: {text}", "this host"), "")
        }
        Ok(Outcome::Relayed { reply, from }) if trusted(from) => Check::new(
            "open_relay",
            &t,
            Status::Warn,
            format!(
                "RCPT TO:<{PROBE_RCPT}> accepted ({reply}), but the probe came from {from}, which mynetworks trusts: this says nothing about strangers"
            ),
            "Probe an address this host is not trusted on (its public IP), or run the probe from outside.",
        ),
        Ok(Outcome::Relayed { reply, from }) => Check::new(
            "open_relay",
            &t,
            Status::Fail,
            format!(
                "OPEN RELAY: {addr} accepted RCPT TO:<{PROBE_RCPT}> from {from} without authentication ({reply}); the probe stopped before DATA"
            ),
            "Set smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination and postfix reload, now: spammers find open relays within hours.",
        ),
        Ok(Outcome::Inconclusive(text)) => Check::new(
            "open_relay",
            &t,
            Status::Warn,
            format!("the server refused before the relay rule was reached: {text}"),
            "Run the probe from an address the server accepts mail from, or read relay_restrictions.",
        ),
    }
}
