//! Postfix message parsing, per daemon. Program names are `<instance>/<daemon>`
//! or `<instance>/<syslog_name parts>/<daemon>` (`postfix/submission/smtpd`,
//! `postfix-out/qmgr`, `postfix/10025/smtpd`); the instance is the first
//! component and the daemon the last.

use super::header::Header;
use super::scan::{
    angle, field, find_byte, find_then_space, finder, leading_u32, leading_u64, parse_u32, parse_u64, rfind_byte, split_once, unbracket,
};
use super::{Daemon, Delivery, Event, Kind, Notice, QueueId, Status, Unparsed, peer};

/// A line of a program named `postfix…`; `Err(OtherProgram)` when the
/// name is not a Postfix one after all. Returns the event itself, not an
/// `Option` of it: the event is large and each layer would copy it.
#[inline]
pub(super) fn parse<'a>(h: &Header<'a>) -> Result<Event<'a>, Unparsed> {
    let prog = h.program;
    let (instance, daemon_name) = match (find_byte(b'/', prog), rfind_byte(b'/', prog)) {
        (Some(first), Some(last)) => (&prog[..first], &prog[last + 1..]),
        _ if prog == b"postfix-script" => (&b"postfix"[..], prog),
        _ if prog == b"postfix" || prog.starts_with(b"postfix-") => (prog, &b""[..]),
        _ => return Err(Unparsed::OtherProgram),
    };
    let daemon = Daemon::from_postfix(daemon_name);
    let kind = message(daemon, h.msg).ok_or(Unparsed::Unsupported(daemon))?;
    Ok(Event { time: h.time, host: h.host, instance, daemon, pid: h.pid, kind })
}

fn info(client: Option<&[u8]>) -> Option<Kind<'_>> {
    Some(Kind::Info { client })
}

/// The address inside the first `[...]` of `s`, if any.
fn bracket_addr(s: &[u8]) -> Option<&[u8]> {
    let open = find_byte(b'[', s)?;
    let close = open + 1 + find_byte(b']', &s[open + 1..])?;
    Some(&s[open + 1..close])
}

/// `warning: …` and friends: the SASL failure is an event, the rest are
/// recognised diagnostics.
fn diagnostic(daemon: Daemon, msg: &[u8]) -> Option<Kind<'_>> {
    // Most lines are not diagnostics: one byte tells.
    if !matches!(msg.first(), Some(b'w' | b'e' | b'f' | b'p' | b'i')) {
        return None;
    }
    let rest = msg
        .strip_prefix(b"warning: ")
        .or_else(|| msg.strip_prefix(b"error: "))
        .or_else(|| msg.strip_prefix(b"fatal: "))
        .or_else(|| msg.strip_prefix(b"panic: "))
        .or_else(|| msg.strip_prefix(b"info: "))?;
    if daemon == Daemon::Smtpd
        && let Some((p, after)) = peer(rest)
        && let Some(after) = after.strip_prefix(b": SASL ")
        && let Some((mech, _)) = split_once(after, finder!(b" authentication failed"))
    {
        return Some(Kind::SaslFailed { client: p, mechanism: mech });
    }
    info(bracket_addr(rest))
}

#[inline]
fn message(daemon: Daemon, msg: &[u8]) -> Option<Kind<'_>> {
    if msg.is_empty() {
        return None;
    }
    if let Some(k) = diagnostic(daemon, msg) {
        return Some(k);
    }
    // Lines about a queued message start with its ID (letters and digits
    // only) and `": "`; nothing else needs looking at to tell.
    let n = msg.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if let Some(rest) = msg[n..].strip_prefix(b": ") {
        let id = &msg[..n];
        if let Some(qid) = QueueId::new(id) {
            return queued(daemon, qid, rest);
        }
        if id == b"NOQUEUE" {
            return noqueue(daemon, rest);
        }
    }
    match daemon {
        Daemon::Smtpd => smtpd(msg),
        Daemon::Smtp | Daemon::Lmtp => client_side(msg),
        Daemon::Postscreen => postscreen(msg),
        Daemon::Qmgr | Daemon::Anvil | Daemon::Scache | Daemon::Tlsmgr | Daemon::Verify => {
            starts_any(msg, &[b"statistics: ", b"status: ", b"lost connection", b"connect to ", b"cache "])
                .then_some(Kind::Info { client: None })
        }
        Daemon::Dnsblog => msg
            .strip_prefix(b"addr ")
            .map(|a| Kind::Info { client: Some(&a[..a.iter().position(|&c| c == b',' || c == b' ').unwrap_or(a.len())]) }),
        Daemon::Tlsproxy => tls_line(msg).or_else(|| {
            starts_any(msg, &[b"CONNECT from ", b"DISCONNECT ", b"warning: "]).then(|| Kind::Info { client: bracket_addr(msg) })
        }),
        Daemon::Master => {
            starts_any(msg, &[b"daemon started", b"reload", b"terminating", b"daemon stopped"]).then_some(Kind::Info { client: None })
        }
        Daemon::PostfixScript => {
            starts_any(msg, &[b"starting the Postfix", b"stopping the Postfix", b"refreshing the Postfix", b"waiting for", b"Postfix is "])
                .then_some(Kind::Info { client: None })
        }
        Daemon::Postsuper => starts_any(msg, &[b"Deleted: ", b"Requeued: ", b"Placed on hold: ", b"Released from hold: "])
            .then_some(Kind::Info { client: None }),
        Daemon::Local | Daemon::Virtual | Daemon::Pipe => tls_line(msg),
        _ => None,
    }
}

fn starts_any(s: &[u8], prefixes: &[&[u8]]) -> bool {
    prefixes.iter().any(|p| s.starts_with(p))
}

/// `NOQUEUE: reject: RCPT from name[addr]: 554 …; from=<a> to=<b> proto=ESMTP helo=<h>`
#[inline]
fn noqueue(daemon: Daemon, rest: &[u8]) -> Option<Kind<'_>> {
    if let Some(k) = reject(None, rest) {
        return Some(k);
    }
    if rest.starts_with(b"lost connection after ") {
        return info(bracket_addr(rest));
    }
    // Dry-run and non-refusing actions.
    let action_end = finder!(b": ").find(rest)?;
    let action = &rest[..action_end];
    let known = matches!(
        action,
        b"reject_warning" | b"filter" | b"hold" | b"discard" | b"redirect" | b"warn" | b"info" | b"client" | b"milter-discard"
    ) || (daemon == Daemon::Smtpd && action == b"client=");
    known.then(|| Kind::Info { client: bracket_addr(rest) })
}

/// `reject: STAGE from PEER: REPLY; from=<…> to=<…> …` and `milter-reject:`;
/// also cleanup's `reject: header Subject: … from PEER; from=<…> …: 5.7.1 …`.
#[inline]
fn reject<'a>(qid: Option<QueueId<'a>>, rest: &'a [u8]) -> Option<Kind<'a>> {
    let body = rest
        .strip_prefix(b"reject: ")
        .or_else(|| rest.strip_prefix(b"milter-reject: "))
        .or_else(|| rest.strip_prefix(b"proxy-reject: "))?;
    let stage_end = body.iter().position(|&c| c == b' ').unwrap_or(body.len());
    // `proxy-reject: END-OF-MESSAGE: 554 …` puts a colon after the stage.
    let stage = body[..stage_end].strip_suffix(b":").unwrap_or(&body[..stage_end]);
    // An SMTP stage (`RCPT`, `END-OF-MESSAGE`, …) or a content check; any
    // other word is not a refusal Postfix writes.
    let smtp_stage = !stage.is_empty() && stage.iter().all(|&c| c.is_ascii_uppercase() || c == b'-');
    if !smtp_stage && !matches!(stage, b"header" | b"body" | b"mime-header" | b"nested-header") {
        return None;
    }
    let mut client = None;
    let mut reply: &[u8] = b"";
    if let Some((_, after)) = split_once(body, finder!(b" from "))
        && let Some((p, r)) = peer(after)
    {
        client = Some(p);
        reply = r.strip_prefix(b": ").unwrap_or(r);
    }
    if client.is_none() {
        reply = body[stage_end..].trim_ascii_start();
    }
    let from = field(rest, b"from=").map(unbracket);
    let to = field(rest, b"to=").map(unbracket);
    // For header/body checks the reply follows the last ": " after helo=.
    if !smtp_stage {
        if let Some(i) = memchr::memmem::rfind(rest, b": ") {
            reply = &rest[i + 2..];
        }
    } else if let Some(i) = memchr::memchr(b';', reply) {
        reply = &reply[..i];
    }
    Some(Kind::Reject { qid, stage, client, reply, from, to })
}

#[inline]
fn queued<'a>(daemon: Daemon, qid: QueueId<'a>, rest: &'a [u8]) -> Option<Kind<'a>> {
    if rest.starts_with(b"to=") {
        return delivery(qid, rest).map(Kind::Delivery);
    }
    if let Some(k) = reject(Some(qid), rest) {
        return Some(k);
    }
    match daemon {
        Daemon::Smtpd => {
            if let Some(c) = rest.strip_prefix(b"client=") {
                let (client, after) = peer(c)?;
                let sasl_user = field(after, b"sasl_username=");
                return Some(Kind::Client { qid, client, sasl_user });
            }
            // Actions from access/header checks that do not refuse, and
            // smtpd's pre-queue diagnostics about a message.
            starts_any(
                rest,
                &[
                    b"reject_warning: ",
                    b"hold: ",
                    b"discard: ",
                    b"filter: ",
                    b"redirect: ",
                    b"warn: ",
                    b"info: ",
                    b"milter-",
                    b"proxy-accept: ",
                    b"lost connection ",
                ],
            )
            .then(|| Kind::Info { client: bracket_addr(rest) })
        }
        Daemon::Qmgr => {
            if rest == b"removed" {
                return Some(Kind::Removed { qid });
            }
            if let Some(f) = rest.strip_prefix(b"from=") {
                let (from, after) = bracketed_or_bare(f)?;
                // The common `, size=N, nrcpt=N (queue active)`, read in place.
                if let Some((size, r)) = after.strip_prefix(b", size=").and_then(leading_u64)
                    && let Some((nrcpt, _)) = r.strip_prefix(b", nrcpt=").and_then(leading_u32)
                {
                    return Some(Kind::QueueActive { qid, from, size, nrcpt });
                }
                // `status=force-expired` (postsuper -e) returns the message
                // to its sender just the same.
                if finder!(b"status=expired").find(after).is_some() || finder!(b"status=force-expired").find(after).is_some() {
                    return Some(Kind::Expired { qid, from });
                }
                let size = field(after, b"size=").and_then(parse_u64).unwrap_or(0);
                let nrcpt = field(after, b"nrcpt=").and_then(parse_u32).unwrap_or(0);
                return Some(Kind::QueueActive { qid, from, size, nrcpt });
            }
            starts_any(rest, &[b"skipped, still being delivered", b"requeued", b"held"]).then_some(Kind::Info { client: None })
        }
        Daemon::Cleanup => {
            if let Some(m) = rest.strip_prefix(b"message-id=") {
                return Some(Kind::MessageId { qid, message_id: m.trim_ascii() });
            }
            starts_any(
                rest,
                &[
                    b"resent-message-id=",
                    b"replace: ",
                    b"warning: ",
                    b"info: ",
                    b"hold: ",
                    b"discard: ",
                    b"redirect: ",
                    b"filter: ",
                    b"prepend: ",
                    b"strip: ",
                    b"milter-",
                    b"bcc: ",
                    b"dunno: ",
                    b"header ",
                    b"end-of-message ",
                ],
            )
            .then(|| Kind::Info { client: bracket_addr(rest) })
        }
        Daemon::Bounce => {
            let (what, new) = split_once(rest, finder!(b" notification: "))?;
            let kind = match what {
                b"sender non-delivery" => Notice::NonDelivery,
                b"sender delay" => Notice::Delay,
                b"sender delivery status" => Notice::Success,
                _ if what.starts_with(b"postmaster") => Notice::Postmaster,
                _ => return None,
            };
            Some(Kind::Notification { qid, kind, new_qid: QueueId::new(new.trim_ascii())? })
        }
        Daemon::Pickup => {
            let from = field(rest, b"from=").map(unbracket)?;
            Some(Kind::Pickup { qid, from })
        }
        Daemon::Postsuper => match rest {
            b"removed" => Some(Kind::AdminRemoved { qid }),
            b"placed on hold" | b"released from hold" | b"requeued" => info(None),
            _ => None,
        },
        Daemon::Smtp | Daemon::Lmtp | Daemon::Local | Daemon::Virtual | Daemon::Pipe | Daemon::Error | Daemon::Discard => {
            // Per-message diagnostics of delivery agents.
            (starts_any(
                rest,
                &[
                    b"lost connection with ",
                    b"conversation with ",
                    b"host ",
                    b"enabling PIX workarounds",
                    b"breaking line ",
                    b"Cannot start TLS",
                    b"TLS is required",
                    b"sender delivery status notification",
                    b"SASL authentication failed",
                    b"unable to look up",
                ],
            ) || finder!(b" said: ").find(rest).is_some())
            .then(|| Kind::Info { client: bracket_addr(rest) })
        }
        Daemon::Sendmail | Daemon::Postdrop => info(None),
        _ => None,
    }
}

/// `to=<a>, [orig_to=<b>,] relay=R, [conn_use=N,] delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=WORD (text)`
#[inline]
fn delivery<'a>(qid: QueueId<'a>, rest: &'a [u8]) -> Option<Delivery<'a>> {
    let (to, mut s) = bracketed_or_bare(rest.strip_prefix(b"to=")?)?;
    let mut d = Delivery {
        qid,
        to,
        orig_to: None,
        relay: b"none",
        delay: None,
        delays: None,
        dsn: None,
        status: Status::Sent,
        response: b"",
        queued_as: None,
    };
    loop {
        s = s.strip_prefix(b", ")?;
        if let Some(v) = s.strip_prefix(b"orig_to=") {
            let (o, r) = bracketed_or_bare(v)?;
            d.orig_to = Some(o);
            s = r;
            continue;
        }
        if let Some(v) = s.strip_prefix(b"status=") {
            let end = v.iter().position(|&c| c == b' ').unwrap_or(v.len());
            d.status = match &v[..end] {
                b"sent" | b"delivered" => Status::Sent,
                b"deferred" => Status::Deferred,
                b"bounced" => Status::Bounced,
                b"expired" => Status::Expired,
                b"undeliverable" | b"deliverable" | b"undeliverable-but-not-cached" | b"deliverable-but-not-cached" => Status::Probe,
                _ => return None,
            };
            let text = v[end..].trim_ascii();
            let text = text.strip_prefix(b"(").map_or(text, |t| t.strip_suffix(b")").unwrap_or(t));
            d.response = text;
            if let Some((_, id)) = split_once(text, finder!(b"queued as ")) {
                let n = id.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                d.queued_as = QueueId::new(&id[..n]);
            }
            return Some(d);
        }
        let eq = find_byte(b'=', s)?;
        let key = &s[..eq];
        let v = &s[eq + 1..];
        // Values end at ", " (`relay=` never contains one).
        let end = find_then_space(b',', v).unwrap_or(v.len());
        let val = &v[..end];
        match key {
            b"relay" => d.relay = val,
            b"delay" => d.delay = Some(val),
            b"delays" => d.delays = Some(val),
            b"dsn" => d.dsn = Some(val),
            _ => {}
        }
        s = &v[end..];
    }
}

/// `<addr>` or a bare `addr` up to the next `,` (some relays log bare).
fn bracketed_or_bare(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.starts_with(b"<") {
        return angle(s);
    }
    let end = find_byte(b',', s).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn tls_line(msg: &[u8]) -> Option<Kind<'_>> {
    let tls = [
        &b"Anonymous TLS"[..],
        b"Trusted TLS",
        b"Untrusted TLS",
        b"Verified TLS",
        b"SSL_accept error",
        b"SSL_connect error",
        b"TLS handshake",
    ];
    (starts_any(msg, &tls) || finder!(b"TLS connection established").find(msg).is_some()).then(|| Kind::Info { client: bracket_addr(msg) })
}

#[inline]
fn smtpd(msg: &[u8]) -> Option<Kind<'_>> {
    // Some Postfix versions log the before-queue filter's refusal without
    // a `NOQUEUE:`/queue-ID prefix.
    if msg.starts_with(b"proxy-reject: ") {
        return reject(None, msg);
    }
    if let Some(r) = msg.strip_prefix(b"connect from ") {
        let (client, _) = peer(r)?;
        return Some(Kind::Connect { client });
    }
    if let Some(r) = msg.strip_prefix(b"disconnect from ") {
        let (client, after) = peer(r)?;
        // Postfix writes `commands=` last: look there first.
        let last = rfind_byte(b' ', after).map_or(after, |i| &after[i + 1..]);
        let commands = last.strip_prefix(b"commands=").or_else(|| field(after, b"commands=")).and_then(|v| {
            // `commands=5/6` when some failed: total is after the slash.
            let v = v.rsplit(|&c| c == b'/').next().unwrap_or(v);
            parse_u32(v)
        });
        return Some(Kind::Disconnect { client, commands });
    }
    for lead in [&b"lost connection after "[..], b"timeout after "] {
        if let Some(r) = msg.strip_prefix(lead) {
            let (after, p) = split_once(r, finder!(b" from "))?;
            let (client, _) = peer(p)?;
            return Some(Kind::LostConnection { client, after });
        }
    }
    if let Some(k) = tls_line(msg) {
        return Some(k);
    }
    let known = [
        &b"too many errors after "[..],
        b"improper command pipelining after ",
        b"bare <LF> received after ",
        b"setting up TLS connection from ",
        b"discarding EHLO keywords",
        b"statistics: ",
        b"reject: ",
        b"proxy-accept: ",
        b"NOQUEUE: ",
        b"client=",
        b"SSL_",
        b"TLS ",
        b"non-SMTP command from ",
        b"Disconnected ",
        b"service ",
    ];
    if starts_any(msg, &known) || msg.ends_with(b"TLS cipher list") {
        return info(bracket_addr(msg));
    }
    // `name[addr]: TLS cipher list "…"`, `name[addr]: reject: …` variants.
    if let Some((_, after)) = peer(msg)
        && after.starts_with(b": ")
    {
        return info(bracket_addr(msg));
    }
    None
}

fn client_side(msg: &[u8]) -> Option<Kind<'_>> {
    if let Some(k) = tls_line(msg) {
        return Some(k);
    }
    let known = [
        &b"connect to "[..],
        b"discarding EHLO keywords",
        b"host ",
        b"setting up TLS connection to ",
        b"certificate verification failed",
        b"server certificate verification failed",
        b"untrusted issuer",
        b"SSL_",
        b"TLS ",
        b"statistics: ",
        b"unable to look up ",
    ];
    if starts_any(msg, &known) {
        return info(bracket_addr(msg));
    }
    if let Some((_, after)) = peer(msg)
        && after.starts_with(b": ")
    {
        return info(bracket_addr(msg));
    }
    None
}

fn postscreen(msg: &[u8]) -> Option<Kind<'_>> {
    // Known when the first word (and for some the second) is one postscreen
    // writes: `CONNECT from `, `PASS NEW `, `PASS OLD `, `DNSBL rank `,
    // `HANGUP after `, `NON-SMTP COMMAND `, `BARE NEWLINE `, `WHITELIST VETO `,
    // `ALLOWLIST VETO `, or one of the words below followed by a space.
    let end = find_byte(b' ', msg).unwrap_or(msg.len());
    let (word, rest) = msg.split_at(end);
    let known = match word {
        b"CONNECT" => rest.starts_with(b" from "),
        b"PASS" => rest.starts_with(b" NEW ") || rest.starts_with(b" OLD "),
        b"DNSBL" => rest.starts_with(b" rank "),
        b"HANGUP" => rest.starts_with(b" after "),
        b"NON-SMTP" => rest.starts_with(b" COMMAND "),
        b"BARE" => rest.starts_with(b" NEWLINE "),
        b"WHITELIST" | b"ALLOWLIST" => rest.starts_with(b" VETO "),
        b"PREGREET" | b"DISCONNECT" | b"COMMAND" | b"WHITELISTED" | b"ALLOWLISTED" | b"BLACKLISTED" | b"DENYLISTED" | b"cache"
        | b"reject:" | b"NOQUEUE:" | b"warning:" | b"statistics:" => !rest.is_empty(),
        _ => false,
    };
    if known {
        return info(bracket_addr(msg));
    }
    // `COMMAND PIPELINING`, `NOQUEUE: reject` handled above; numbered forms:
    let (_, rest) = leading_u32(msg).unwrap_or((0, msg));
    (rest.len() < msg.len()).then(|| Kind::Info { client: bracket_addr(msg) })
}

#[cfg(test)]
mod tests {
    use crate::parse::{Daemon, Kind, Notice, Status, parse};

    fn kind(line: &str) -> Kind<'_> {
        parse(line.as_bytes()).unwrap_or_else(|e| panic!("{e:?}: {line}")).kind
    }

    #[test]
    fn postscreen_words_match_the_prefix_list() {
        let prefixes: [&[u8]; 21] = [
            b"CONNECT from ",
            b"PASS NEW ",
            b"PASS OLD ",
            b"DNSBL rank ",
            b"HANGUP after ",
            b"PREGREET ",
            b"DISCONNECT ",
            b"COMMAND ",
            b"NON-SMTP COMMAND ",
            b"BARE NEWLINE ",
            b"WHITELISTED ",
            b"ALLOWLISTED ",
            b"BLACKLISTED ",
            b"DENYLISTED ",
            b"WHITELIST VETO ",
            b"ALLOWLIST VETO ",
            b"cache ",
            b"reject: ",
            b"NOQUEUE: ",
            b"warning: ",
            b"statistics: ",
        ];
        let words = [
            "CONNECT",
            "PASS",
            "DNSBL",
            "HANGUP",
            "PREGREET",
            "DISCONNECT",
            "COMMAND",
            "NON-SMTP",
            "BARE",
            "WHITELISTED",
            "WHITELIST",
            "ALLOWLIST",
            "ALLOWLISTED",
            "BLACKLISTED",
            "DENYLISTED",
            "cache",
            "reject:",
            "NOQUEUE:",
            "warning:",
            "statistics:",
            "from",
            "NEW",
            "OLD",
            "rank",
            "after",
            "VETO",
            "NEWLINE",
            "PIPELINING",
            "12",
            "CONNECTED",
            "pass",
            "",
        ];
        for a in words {
            for b in words {
                for tail in ["", " ", " [1.2.3.4]:25"] {
                    let msg = format!("{a} {b}{tail}");
                    let m = msg.as_bytes();
                    let old = prefixes.iter().any(|p| m.starts_with(p)) || super::leading_u32(m).is_some();
                    assert_eq!(super::postscreen(m).is_some(), old, "{msg:?}");
                }
            }
        }
    }

    #[test]
    fn delivery_line_fields() {
        let l = "Jan 27 07:00:04 mail postfix/smtp[27806]: 2AA0F3004142: to=<a@b.com>, orig_to=<x@y>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.21, delays=0.09/0.01/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5776E3012027)";
        let Kind::Delivery(d) = kind(l) else { panic!() };
        assert_eq!(d.to, b"a@b.com");
        assert_eq!(d.orig_to, Some(&b"x@y"[..]));
        assert_eq!(d.relay, b"127.0.0.1[127.0.0.1]:10024");
        assert_eq!(d.delays, Some(&b"0.09/0.01/0/0.1"[..]));
        assert_eq!(d.dsn, Some(&b"2.0.0"[..]));
        assert_eq!(d.status, Status::Sent);
        assert_eq!(d.queued_as.map(|q| q.0), Some(&b"5776E3012027"[..]));
    }

    #[test]
    fn reject_lines() {
        let l = "Jun  3 10:40:57 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>";
        let Kind::Reject { qid, stage, client, reply, from, to } = kind(l) else { panic!() };
        assert_eq!((qid, stage), (None, &b"RCPT"[..]));
        assert_eq!(client.map(|c| c.addr), Some(&b"1.2.3.4"[..]));
        assert_eq!(reply, b"554 5.7.1 <x@y>: Relay access denied");
        assert_eq!((from, to), (Some(&b"a@b"[..]), Some(&b"x@y"[..])));
        let l = "Jun  3 10:40:57 mail postfix/cleanup[1]: 4AA091855DA0: milter-reject: END-OF-MESSAGE from a[1.2.3.4]: 5.7.1 Spam; from=<a@b> to=<c@d> proto=ESMTP helo=<h>";
        assert!(matches!(kind(l), Kind::Reject { qid: Some(_), .. }));
    }

    #[test]
    fn qmgr_bounce_pickup_sasl() {
        assert!(matches!(
            kind("Jun  3 10:40:57 mail postfix/qmgr[1]: 4AA091855DA0: from=<user@sender.com>, size=391, nrcpt=1 (queue active)"),
            Kind::QueueActive { size: 391, nrcpt: 1, .. }
        ));
        assert!(matches!(
            kind("Sep 30 20:46:08 n postfix-1.2.3.4/qmgr[3]: 23EBE3D5C0: from=<a@b>, status=expired, returned to sender"),
            Kind::Expired { .. }
        ));
        assert!(matches!(
            kind("Jun  3 10:40:59 mail postfix/bounce[9]: 776E41855DB2: sender non-delivery notification: A48191855DA0"),
            Kind::Notification { kind: Notice::NonDelivery, .. }
        ));
        assert!(matches!(kind("Jan 1 00:00:00 h postfix/pickup[9]: 4AA091855DA0: uid=0 from=<root>"), Kind::Pickup { from: b"root", .. }));
        let e = parse(
            b"Jan 1 00:00:00 h postfix/submission/smtpd[9]: warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        )
        .expect("sasl");
        assert_eq!(e.daemon, Daemon::Smtpd);
        assert!(matches!(e.kind, Kind::SaslFailed { mechanism: b"LOGIN", .. }));
    }

    #[test]
    fn instance_and_daemon_from_program() {
        let e = parse(b"Jan 1 00:00:00 h postfix-out/qmgr[9]: 4AA091855DA0: removed").expect("ok");
        assert_eq!((e.instance, e.daemon), (&b"postfix-out"[..], Daemon::Qmgr));
        let e = parse(b"Jan 1 00:00:00 h postfix/10025/smtpd[9]: connect from a[1.2.3.4]").expect("ok");
        assert_eq!((e.instance, e.daemon), (&b"postfix"[..], Daemon::Smtpd));
    }
}
