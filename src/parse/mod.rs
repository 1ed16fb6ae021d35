//! Zero-copy Postfix/Dovecot log line parser.
//!
//! `parse(line)` turns one log line into an [`Event`] that borrows from the
//! line, or into a small [`Unparsed`] reason that feeds the line counters.
//! This module owns line *meaning* only: no I/O, no clock, no allocation, and
//! no panic for any input (fuzzed and property-tested). Year/zone resolution of
//! the header time happens later, in `crate::clock`.

mod dovecot;
mod header;
mod postfix;
#[cfg(test)]
mod proptests;
pub(crate) mod scan;

pub use header::RawTime;
pub(crate) use header::days_from_civil;

/// A Postfix queue ID (short hex or long base-52 form), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueId<'a>(pub &'a [u8]);

impl<'a> QueueId<'a> {
    /// Short IDs are 6–12 upper-case hex digits (up to 21 with 64-bit inode
    /// numbers: 5 digits of microseconds + the inode in hex); long IDs (`enable_long_queue_ids`) are 12–20 characters of
    /// a vowel-free base-52 alphabet, so no English word can pass for one.
    pub(crate) fn new(s: &'a [u8]) -> Option<Self> {
        let ok = match s.len() {
            5..=21 if s.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)) => true,
            10..=24 => s
                .iter()
                .all(|c| c.is_ascii_alphanumeric() && !matches!(c, b'A' | b'E' | b'I' | b'O' | b'U' | b'a' | b'e' | b'i' | b'o' | b'u')),
            _ => false,
        };
        ok.then_some(QueueId(s))
    }
}

/// A remote peer as Postfix logs it: `name[addr]` or `name[addr]:port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer<'a> {
    pub name: &'a [u8],
    pub addr: &'a [u8],
    pub port: Option<u16>,
}

/// Which program wrote a line, for per-daemon counters and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Daemon {
    Smtpd,
    Smtp,
    Lmtp,
    Local,
    Virtual,
    Pipe,
    Error,
    Discard,
    Qmgr,
    Cleanup,
    Bounce,
    Pickup,
    Postscreen,
    Dnsblog,
    Tlsproxy,
    Anvil,
    Master,
    Postsuper,
    Postdrop,
    Sendmail,
    Scache,
    TrivialRewrite,
    Verify,
    Tlsmgr,
    Postmap,
    PostfixScript,
    PostfixOther,
    ImapLogin,
    Pop3Login,
    SubmissionLogin,
    ManagesieveLogin,
    DovecotAuth,
    DovecotImap,
    DovecotPop3,
    DovecotLmtp,
    DovecotLda,
    DovecotMain,
    DovecotOther,
}

impl Daemon {
    pub const ALL: [Daemon; 38] = [
        Daemon::Smtpd,
        Daemon::Smtp,
        Daemon::Lmtp,
        Daemon::Local,
        Daemon::Virtual,
        Daemon::Pipe,
        Daemon::Error,
        Daemon::Discard,
        Daemon::Qmgr,
        Daemon::Cleanup,
        Daemon::Bounce,
        Daemon::Pickup,
        Daemon::Postscreen,
        Daemon::Dnsblog,
        Daemon::Tlsproxy,
        Daemon::Anvil,
        Daemon::Master,
        Daemon::Postsuper,
        Daemon::Postdrop,
        Daemon::Sendmail,
        Daemon::Scache,
        Daemon::TrivialRewrite,
        Daemon::Verify,
        Daemon::Tlsmgr,
        Daemon::Postmap,
        Daemon::PostfixScript,
        Daemon::PostfixOther,
        Daemon::ImapLogin,
        Daemon::Pop3Login,
        Daemon::SubmissionLogin,
        Daemon::ManagesieveLogin,
        Daemon::DovecotAuth,
        Daemon::DovecotImap,
        Daemon::DovecotPop3,
        Daemon::DovecotLmtp,
        Daemon::DovecotLda,
        Daemon::DovecotMain,
        Daemon::DovecotOther,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Daemon::Smtpd => "smtpd",
            Daemon::Smtp => "smtp",
            Daemon::Lmtp => "lmtp",
            Daemon::Local => "local",
            Daemon::Virtual => "virtual",
            Daemon::Pipe => "pipe",
            Daemon::Error => "error",
            Daemon::Discard => "discard",
            Daemon::Qmgr => "qmgr",
            Daemon::Cleanup => "cleanup",
            Daemon::Bounce => "bounce",
            Daemon::Pickup => "pickup",
            Daemon::Postscreen => "postscreen",
            Daemon::Dnsblog => "dnsblog",
            Daemon::Tlsproxy => "tlsproxy",
            Daemon::Anvil => "anvil",
            Daemon::Master => "master",
            Daemon::Postsuper => "postsuper",
            Daemon::Postdrop => "postdrop",
            Daemon::Sendmail => "sendmail",
            Daemon::Scache => "scache",
            Daemon::TrivialRewrite => "trivial-rewrite",
            Daemon::Verify => "verify",
            Daemon::Tlsmgr => "tlsmgr",
            Daemon::Postmap => "postmap",
            Daemon::PostfixScript => "postfix-script",
            Daemon::PostfixOther => "postfix-other",
            Daemon::ImapLogin => "dovecot/imap-login",
            Daemon::Pop3Login => "dovecot/pop3-login",
            Daemon::SubmissionLogin => "dovecot/submission-login",
            Daemon::ManagesieveLogin => "dovecot/managesieve-login",
            Daemon::DovecotAuth => "dovecot/auth",
            Daemon::DovecotImap => "dovecot/imap",
            Daemon::DovecotPop3 => "dovecot/pop3",
            Daemon::DovecotLmtp => "dovecot/lmtp",
            Daemon::DovecotLda => "dovecot/lda",
            Daemon::DovecotMain => "dovecot/master",
            Daemon::DovecotOther => "dovecot/other",
        }
    }

    pub fn is_dovecot(self) -> bool {
        self >= Daemon::ImapLogin
    }

    /// The Postfix daemons whose lines the ≥ 99 % target applies to.
    pub fn is_core_postfix(self) -> bool {
        matches!(
            self,
            Daemon::Smtpd
                | Daemon::Smtp
                | Daemon::Lmtp
                | Daemon::Local
                | Daemon::Virtual
                | Daemon::Pipe
                | Daemon::Error
                | Daemon::Qmgr
                | Daemon::Cleanup
                | Daemon::Bounce
                | Daemon::Pickup
        )
    }

    fn from_postfix(name: &[u8]) -> Daemon {
        match name {
            b"smtpd" => Daemon::Smtpd,
            b"smtp" => Daemon::Smtp,
            b"lmtp" => Daemon::Lmtp,
            b"local" => Daemon::Local,
            b"virtual" => Daemon::Virtual,
            b"pipe" => Daemon::Pipe,
            b"error" | b"retry" => Daemon::Error,
            b"discard" => Daemon::Discard,
            b"qmgr" | b"oqmgr" => Daemon::Qmgr,
            b"cleanup" => Daemon::Cleanup,
            b"bounce" | b"defer" | b"trace" => Daemon::Bounce,
            b"pickup" => Daemon::Pickup,
            b"postscreen" => Daemon::Postscreen,
            b"dnsblog" => Daemon::Dnsblog,
            b"tlsproxy" => Daemon::Tlsproxy,
            b"anvil" => Daemon::Anvil,
            b"master" => Daemon::Master,
            b"postsuper" => Daemon::Postsuper,
            b"postdrop" => Daemon::Postdrop,
            b"sendmail" => Daemon::Sendmail,
            b"scache" => Daemon::Scache,
            b"trivial-rewrite" => Daemon::TrivialRewrite,
            b"verify" => Daemon::Verify,
            b"tlsmgr" => Daemon::Tlsmgr,
            b"postmap" => Daemon::Postmap,
            b"postfix-script" => Daemon::PostfixScript,
            _ => Daemon::PostfixOther,
        }
    }
}

/// Which kind of notice `bounce` generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    NonDelivery,
    Delay,
    Success,
    /// `postmaster non-delivery notification` and other copies to the
    /// postmaster: generated mail, but not one of the sender's notices.
    Postmaster,
}

/// A delivery attempt's `status=` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Sent,
    Deferred,
    Bounced,
    Expired,
    /// `undeliverable`/`deliverable` from address verification probes.
    Probe,
}

/// One `to=<…>, relay=…, status=…` line of a delivery agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub qid: QueueId<'a>,
    pub to: &'a [u8],
    pub orig_to: Option<&'a [u8]>,
    /// `relay=` value as logged (`none`, `local`, `host[addr]:port`, …).
    pub relay: &'a [u8],
    pub delay: Option<&'a [u8]>,
    pub delays: Option<&'a [u8]>,
    pub dsn: Option<&'a [u8]>,
    pub status: Status,
    /// The text in parentheses after the status word.
    pub response: &'a [u8],
    /// `queued as NEWID` inside the response, if any.
    pub queued_as: Option<QueueId<'a>>,
}

/// What a line means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind<'a> {
    /// smtpd `connect from name[addr]`.
    Connect { client: Peer<'a> },
    /// smtpd `disconnect from …` with the total command count.
    Disconnect { client: Peer<'a>, commands: Option<u32> },
    /// smtpd `lost connection after X from …` / `timeout after X from …`.
    LostConnection { client: Peer<'a>, after: &'a [u8] },
    /// smtpd `QID: client=name[addr]` (a message enters from a client).
    Client { qid: QueueId<'a>, client: Peer<'a>, sasl_user: Option<&'a [u8]> },
    /// A `reject:`/`milter-reject:` refusal from smtpd or cleanup.
    Reject {
        qid: Option<QueueId<'a>>,
        stage: &'a [u8],
        client: Option<Peer<'a>>,
        reply: &'a [u8],
        from: Option<&'a [u8]>,
        to: Option<&'a [u8]>,
    },
    /// smtpd `warning: name[addr]: SASL MECH authentication failed: …`.
    SaslFailed { client: Peer<'a>, mechanism: &'a [u8] },
    /// cleanup `QID: message-id=<…>`.
    MessageId { qid: QueueId<'a>, message_id: &'a [u8] },
    /// qmgr `QID: from=<…>, size=N, nrcpt=N (queue active)`.
    QueueActive { qid: QueueId<'a>, from: &'a [u8], size: u64, nrcpt: u32 },
    /// qmgr `QID: removed`.
    Removed { qid: QueueId<'a> },
    /// qmgr `QID: from=<…>, status=expired, returned to sender`.
    Expired { qid: QueueId<'a>, from: &'a [u8] },
    /// A delivery agent's status line.
    Delivery(Delivery<'a>),
    /// bounce `QID: sender non-delivery notification: NEWID`.
    Notification { qid: QueueId<'a>, kind: Notice, new_qid: QueueId<'a> },
    /// pickup `QID: uid=N from=<…>`.
    Pickup { qid: QueueId<'a>, from: &'a [u8] },
    /// postsuper `QID: removed` (admin deleted a queued message).
    AdminRemoved { qid: QueueId<'a> },
    /// Dovecot `<proto>-login: Login: user=<…>, …, rip=…`.
    Login { user: &'a [u8], rip: Option<&'a [u8]> },
    /// Dovecot `<proto>-login: … (auth failed, N attempts …): user=<…>, rip=…`.
    AuthFailed { user: &'a [u8], rip: Option<&'a [u8]>, attempts: u32 },
    /// Dovecot `auth`/`auth-worker` `password mismatch` / `unknown user`
    /// evidence lines (not counted again as failures).
    AuthEvidence { user: &'a [u8], rip: Option<&'a [u8]>, unknown_user: bool },
    /// Dovecot refused by the auth policy server.
    PolicyRefused { user: &'a [u8], rip: Option<&'a [u8]> },
    /// A recognised line with nothing to track (TLS set-up, postscreen
    /// verdicts, anvil statistics, master start-up, warnings, …); `client`
    /// is the peer address when the line names one.
    Info { client: Option<&'a [u8]> },
}

/// A parsed line: the header fields plus its meaning.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub time: RawTime,
    pub host: &'a [u8],
    /// The Postfix instance (`postfix`, `postfix-out`, …) for Postfix lines,
    /// `dovecot` for Dovecot lines. Queue IDs are unique per (host, instance).
    pub instance: &'a [u8],
    pub daemon: Daemon,
    pub pid: Option<u32>,
    pub kind: Kind<'a>,
}

/// Why a line produced no event. Small and `Copy`: it only feeds counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unparsed {
    /// No usable syslog header.
    Malformed,
    /// A program that is neither Postfix nor Dovecot (amavis, opendkim, …).
    OtherProgram,
    /// A Postfix/Dovecot program, but a message this parser does not know.
    Unsupported(Daemon),
}

/// Parses one log line (without its trailing newline).
///
/// # Errors
/// [`Unparsed`] says why the line carries no event; it never fails otherwise.
pub fn parse(line: &[u8]) -> Result<Event<'_>, Unparsed> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    meaning(header::header(line))
}

#[inline]
fn meaning(h: Option<header::Header<'_>>) -> Result<Event<'_>, Unparsed> {
    let h = h.ok_or(Unparsed::Malformed)?;
    // No Dovecot program name starts with `postfix`.
    if h.program.starts_with(b"postfix") { postfix::parse(&h) } else { dovecot::parse(&h) }
}

/// [`parse`] for the lines of one log in order: it remembers the last
/// classic time stamp, so a line in the same second as the one before
/// skips decoding it. Gives exactly what [`parse`] gives.
#[derive(Clone, Debug, Default)]
pub struct Parser {
    stamp: header::StampCache,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// [`parse`] of `line`.
    ///
    /// # Errors
    /// As [`parse`].
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Event<'a>, Unparsed> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        meaning(header::header_cached(line, &mut self.stamp))
    }
}

/// Parses `name[addr]` or `name[addr]:port` at the start of `s`; returns the
/// peer and the rest.
pub(crate) fn peer(s: &[u8]) -> Option<(Peer<'_>, &[u8])> {
    let open = scan::find_byte(b'[', s)?;
    let name = &s[..open];
    if name.contains(&b' ') {
        return None;
    }
    let close = open + 1 + scan::find_byte(b']', &s[open + 1..])?;
    let addr = &s[open + 1..close];
    let mut rest = &s[close + 1..];
    let mut port = None;
    if let Some(r) = rest.strip_prefix(b":") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 {
            port = scan::parse_u32(&r[..n]).and_then(|p| u16::try_from(p).ok());
            rest = &r[n..];
        }
    }
    Some((Peer { name, addr, port }, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids() {
        assert!(QueueId::new(b"2AA0F3004142").is_some());
        assert!(QueueId::new(b"4DQZH96tZczdZLP").is_some());
        assert!(QueueId::new(b"3mPVKl0Mhjz7sXv").is_some());
        assert!(QueueId::new(b"warning").is_none());
        assert!(QueueId::new(b"NOQUEUE").is_none());
        assert!(QueueId::new(b"statistics").is_none());
        assert!(QueueId::new(b"connect").is_none());
    }

    #[test]
    fn peers() {
        let (p, rest) = peer(b"mx.example.com[1.2.3.4]:25, x").expect("peer");
        assert_eq!((p.name, p.addr, p.port, rest), (&b"mx.example.com"[..], &b"1.2.3.4"[..], Some(25), &b", x"[..]));
        let (p, _) = peer(b"unknown[2001:db8::1]").expect("v6");
        assert_eq!(p.addr, b"2001:db8::1");
    }

    #[test]
    fn classification() {
        assert_eq!(parse(b"garbage").unwrap_err(), Unparsed::Malformed);
        assert_eq!(
            parse(b"Jun  3 10:40:57 mail opendkim[235]: 4AA091855DA0: DKIM-Signature field added").unwrap_err(),
            Unparsed::OtherProgram
        );
        assert_eq!(
            parse(b"Jun  3 10:40:57 mail postfix/smtpd[1]: something new entirely").unwrap_err(),
            Unparsed::Unsupported(Daemon::Smtpd)
        );
    }
}
