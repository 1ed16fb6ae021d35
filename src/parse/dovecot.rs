//! Dovecot message parsing: login processes (`imap-login`, `pop3-login`,
//! `submission-login`, `managesieve-login`), the `auth`/`auth-worker`
//! processes and the mail processes, in syslog form (`dovecot: imap-login:
//! …`) and in Dovecot's own `log_path` form (`imap-login: Info: …`).

use super::header::Header;
use super::scan::{field, finder, leading_u32, split_colon, split_once, unbracket};
use super::{Daemon, Event, Kind, Unparsed};

/// Strips `Info: ` and the other level words Dovecot puts before messages.
fn strip_level(msg: &[u8]) -> &[u8] {
    if !matches!(msg.first(), Some(b'I' | b'W' | b'E' | b'F' | b'P' | b'D')) {
        return msg;
    }
    for lvl in [&b"Info: "[..], b"Warning: ", b"Error: ", b"Fatal: ", b"Panic: ", b"Debug: ", b"Warn: "] {
        if let Some(r) = msg.strip_prefix(lvl) {
            return r;
        }
    }
    msg
}

/// `imap-login`, `auth-worker(12)`, `imap(user)<1><sess>` -> daemon.
fn process(name: &[u8]) -> Option<Daemon> {
    let base_end = name.iter().position(|&c| c == b'(' || c == b'<').unwrap_or(name.len());
    Some(match &name[..base_end] {
        b"imap-login" => Daemon::ImapLogin,
        b"pop3-login" => Daemon::Pop3Login,
        b"submission-login" => Daemon::SubmissionLogin,
        b"managesieve-login" => Daemon::ManagesieveLogin,
        b"auth" | b"auth-worker" | b"dovecot-auth" => Daemon::DovecotAuth,
        b"imap" => Daemon::DovecotImap,
        b"pop3" => Daemon::DovecotPop3,
        b"lmtp" => Daemon::DovecotLmtp,
        b"lda" | b"deliver" => Daemon::DovecotLda,
        b"master" | b"dovecot" => Daemon::DovecotMain,
        b"config" | b"log" | b"anvil" | b"stats" | b"indexer" | b"indexer-worker" | b"doveadm" | b"dict" | b"quota-status"
        | b"submission" | b"managesieve" | b"ssl-params" => Daemon::DovecotOther,
        _ => return None,
    })
}

/// `Err(OtherProgram)`: not a Dovecot program.
#[inline]
pub(super) fn parse<'a>(h: &Header<'a>) -> Result<Event<'a>, Unparsed> {
    let (daemon, msg) = match h.program {
        b"dovecot" | b"dovecot-auth" => {
            let msg = strip_level(h.msg);
            // `dovecot[442]: dovecot: auth(default): …` names the program twice.
            let msg = msg.strip_prefix(b"dovecot: ").map_or(msg, strip_level);
            // `dovecot: imap-login: …`; a bare `dovecot: …` is the master.
            match split_colon(msg) {
                Some((name, rest)) if !name.contains(&b' ') => match process(name) {
                    Some(Daemon::DovecotAuth) => return finish(h, Daemon::DovecotAuth, auth(name, strip_level(rest))),
                    Some(d) => (d, strip_level(rest)),
                    None if h.program == b"dovecot-auth" => (Daemon::DovecotAuth, msg),
                    None => (Daemon::DovecotMain, msg),
                },
                _ if h.program == b"dovecot-auth" => (Daemon::DovecotAuth, msg),
                _ => (Daemon::DovecotMain, msg),
            }
        }
        p => match process(p) {
            Some(Daemon::DovecotAuth) => return finish(h, Daemon::DovecotAuth, auth(p, strip_level(h.msg))),
            Some(d) => (d, strip_level(h.msg)),
            None => return Err(Unparsed::OtherProgram),
        },
    };
    finish(h, daemon, message(daemon, msg))
}

fn finish<'a>(h: &Header<'a>, daemon: Daemon, kind: Option<Kind<'a>>) -> Result<Event<'a>, Unparsed> {
    let kind = kind.ok_or(Unparsed::Unsupported(daemon))?;
    Ok(Event { time: h.time, host: h.host, instance: b"dovecot", daemon, pid: h.pid, kind })
}

fn rip(msg: &[u8]) -> Option<&[u8]> {
    field(msg, b"rip=").map(|ip| ip.strip_prefix(b"::ffff:").unwrap_or(ip))
}

fn user(msg: &[u8]) -> &[u8] {
    field(msg, b"user=").map_or(b"", unbracket)
}

fn message(daemon: Daemon, msg: &[u8]) -> Option<Kind<'_>> {
    match daemon {
        Daemon::ImapLogin | Daemon::Pop3Login | Daemon::SubmissionLogin | Daemon::ManagesieveLogin => login(msg),
        Daemon::DovecotAuth => auth(b"auth", msg),
        _ => session(msg),
    }
}

fn login(msg: &[u8]) -> Option<Kind<'_>> {
    if msg.starts_with(b"Login: ") {
        return Some(Kind::Login { user: user(msg), rip: rip(msg) });
    }
    if let Some((_, after)) = split_once(msg, finder!(b"(auth failed, ")) {
        let (attempts, _) = leading_u32(after)?;
        return Some(Kind::AuthFailed { user: user(msg), rip: rip(msg), attempts });
    }
    // Dovecot 1.x: `Aborted login (1 authentication attempts): …`.
    if let Some(after) = msg.strip_prefix(b"Aborted login (")
        && let Some((attempts, rest)) = leading_u32(after)
        && rest.starts_with(b" authentication attempts")
        && attempts > 0
    {
        return Some(Kind::AuthFailed { user: user(msg), rip: rip(msg), attempts });
    }
    if finder!(b"policy").find(msg).is_some() && finder!(b"refus").find(msg).is_some() {
        return Some(Kind::PolicyRefused { user: user(msg), rip: rip(msg) });
    }
    let known = [
        &b"Disconnected"[..],
        b"Aborted login",
        b"Login aborted",
        b"Maximum number of",
        b"Connection closed",
        b"proxy",
        b"Error",
        b"Warning",
        b"ID sent",
        b"fd_send",
    ];
    known.iter().any(|k| msg.starts_with(k)).then(|| Kind::Info { client: rip(msg) })
}

/// `mech(user,ip[,session]): text` as written by `auth`/`auth-worker`;
/// `name` is the process name, which carries user and address in 2.4.
fn auth<'a>(name: &'a [u8], msg: &'a [u8]) -> Option<Kind<'a>> {
    // PAM's own message: `pam_unix(dovecot:auth): authentication failure; … rhost=IP  user=U`.
    if msg.starts_with(b"pam_unix(") {
        if finder!(b"authentication failure").find(msg).is_some() {
            let rhost = field(msg, b"rhost=");
            let u = field(msg, b"user=").unwrap_or(b"");
            return Some(Kind::AuthEvidence { user: u, rip: rhost, unknown_user: false });
        }
        return Some(Kind::Info { client: None });
    }
    // `conn unix:auth-worker (pid=…,uid=…): auth-worker<6>: pam(user,ip): …`
    let msg = match msg.strip_prefix(b"conn ").and_then(|r| split_once(r, finder!(b">: "))) {
        Some((_, after)) => after,
        None => msg,
    };
    // Dovecot 2.4 names user and address in the process:
    // `auth(user,ip,sasl:login)<session>: sql: Password mismatch …`.
    let (mech, u, ip, text) = if let Some((u, ip)) = name.iter().position(|&c| c == b'(').and_then(|o| user_ip(&name[o + 1..])) {
        let (mech, text) = split_colon(msg).filter(|(m, _)| !m.contains(&b' ')).unwrap_or((b"", msg));
        (mech, u, ip, text)
    } else {
        let open = memchr::memchr(b'(', msg)?;
        let (inside, text) = split_once(&msg[open + 1..], finder!(b"): "))?;
        let (u, ip) = user_ip(inside).unwrap_or((inside, None));
        (&msg[..open], u, ip, text)
    };
    if mech == b"policy" && (finder!(b"refus").find(text).is_some() || finder!(b"reject").find(text).is_some()) {
        return Some(Kind::PolicyRefused { user: u, rip: ip });
    }
    let lower_has = |needle: &[u8]| text.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    if lower_has(b"unknown user") || lower_has(b"user not found") || lower_has(b"user not known") {
        return Some(Kind::AuthEvidence { user: u, rip: ip, unknown_user: true });
    }
    if lower_has(b"password mismatch")
        || lower_has(b"invalid credentials")
        || lower_has(b"authentication failure")
        || lower_has(b"pam_authenticate() failed")
    {
        return Some(Kind::AuthEvidence { user: u, rip: ip, unknown_user: false });
    }
    Some(Kind::Info { client: ip })
}

/// `user,ip[,session…]` (up to the closing `)` if any): the user and the
/// address; `None` without a comma (`auth-worker(default)`, `auth(12)`).
fn user_ip(inside: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let inside = &inside[..inside.iter().position(|&c| c == b')').unwrap_or(inside.len())];
    let (u, rest) = split_once(inside, finder!(b","))?;
    let ip = &rest[..rest.iter().position(|&c| c == b',').unwrap_or(rest.len())];
    Some((u, Some(ip).filter(|ip| !ip.is_empty()).map(|ip| ip.strip_prefix(b"::ffff:").unwrap_or(ip))))
}

fn session(msg: &[u8]) -> Option<Kind<'_>> {
    let known = [
        &b"Disconnected"[..],
        b"Connection closed",
        b"Logged out",
        b"Connect from",
        b"Disconnect from",
        b"msgid=",
        b"saved mail to",
        b"sieve:",
        b"Error",
        b"Warning",
        b"Fatal",
        b"Server shutting down",
        b"Killed with signal",
        b"Dovecot v",
        b"Dovecot",
        b"Connection timed out",
        b"Mailbox ",
        b"Login:",
        b"auth",
        b"master",
        b"Time moved",
        b"SSL",
        b"Maximum number",
        b"service(",
        b"Debug",
        b"Info",
        b"Panic",
    ];
    if known.iter().any(|k| msg.starts_with(k)) {
        return Some(Kind::Info { client: rip(msg) });
    }
    // `<session>: msgid=…: saved mail to INBOX` after a session prefix.
    let (_, rest) = split_colon(msg)?;
    known.iter().any(|k| rest.starts_with(k)).then(|| Kind::Info { client: rip(msg) })
}

#[cfg(test)]
mod tests {
    use crate::parse::{Daemon, Kind, parse};

    #[test]
    fn logins_and_failures() {
        let e = parse(b"Jan 27 06:36:56 mail dovecot: imap-login: Login: user=<h-304@x.com>, method=LOGIN, rip=224.165.23.115, lip=170.45.1.1, mpid=21711, TLS").expect("login");
        assert_eq!(e.daemon, Daemon::ImapLogin);
        assert_eq!(e.kind, Kind::Login { user: b"h-304@x.com", rip: Some(b"224.165.23.115") });
        let e = parse(b"Aug 30 00:11:05 imap-login: Info: Login aborted: Connection closed (auth failed, 3 attempts in 16 secs) (auth_failed): user=<info@example.com>, method=PLAIN, rip=192.0.2.110, lip=0.0.0.0, TLS").expect("fail");
        assert_eq!(e.kind, Kind::AuthFailed { user: b"info@example.com", rip: Some(b"192.0.2.110"), attempts: 3 });
        let e = parse(b"@400000004c91b044077a9e94 imap-login: Info: Aborted login (auth failed, 1 attempts): user=<m@w.de>, method=CRAM-MD5, rip=80.187.101.33, lip=80.254.129.240, TLS").expect("tai");
        assert!(matches!(e.kind, Kind::AuthFailed { attempts: 1, .. }));
        let e = parse(b"May 31 09:43:57 Info: pop3-login: Aborted login (1 authentication attempts): user=<username>, method=PLAIN, rip=::ffff:1.2.3.4, lip=::ffff:1.2.3.5, secured").expect("old");
        assert_eq!(e.kind, Kind::AuthFailed { user: b"username", rip: Some(b"1.2.3.4"), attempts: 1 });
    }

    #[test]
    fn auth_evidence() {
        let e = parse(b"2013-08-11 03:56:40 auth-worker(default): Info: pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)").expect("pam");
        assert_eq!(e.kind, Kind::AuthEvidence { user: b"username", rip: Some(b"1.2.3.4"), unknown_user: false });
        let e = parse(b"Jan 1 00:00:00 h dovecot: auth: passwd-file(bob,10.0.0.1): unknown user").expect("unknown");
        assert_eq!(e.kind, Kind::AuthEvidence { user: b"bob", rip: Some(b"10.0.0.1"), unknown_user: true });
        let e = parse(b"Apr 29 15:54:19 mail dovecot: auth-worker(14864): conn unix:auth-worker (pid=14830,uid=109): auth-worker<6>: pam(caliph@x.com,5.34.207.151): pam_authenticate() failed: Authentication failure (Password mismatch?)").expect("conn");
        assert_eq!(e.kind, Kind::AuthEvidence { user: b"caliph@x.com", rip: Some(b"5.34.207.151"), unknown_user: false });
        let e = parse(b"Aug 30 00:10:57 auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: x)").expect("2.4");
        assert_eq!(
            (e.daemon, e.kind),
            (Daemon::DovecotAuth, Kind::AuthEvidence { user: b"info@example.com", rip: Some(b"192.0.2.110"), unknown_user: false })
        );
        let e = parse(b"Jul 02 13:49:32 h dovecot[442]: dovecot: auth(default): pam(a@b.com,200.76.17.206): pam_authenticate() failed: User not known to the underlying authentication module: 2 Time(s)").expect("twice");
        assert_eq!(
            (e.daemon, e.kind),
            (Daemon::DovecotAuth, Kind::AuthEvidence { user: b"a@b.com", rip: Some(b"200.76.17.206"), unknown_user: true })
        );
    }
}
