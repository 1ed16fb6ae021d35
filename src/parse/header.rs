//! Syslog header decoding: the time stamp, host, program and pid in front of
//! every line, in each format postlens accepts.
//!
//! Formats, auto-detected per line: classic BSD syslog (`Mar  6 07:08:59 host
//! prog[pid]: msg`, padded or unpadded day, host optional), RFC 3339 with any
//! fraction and `Z` or `±hh:mm`, prepend-rfc3339 (an RFC 3339 stamp in front of
//! a classic line; the RFC 3339 stamp wins), Dovecot's own `log_path` lines
//! (`2013-08-11 03:56:40 auth-worker(default): Info: …`) and tai64n (`@4000…`).
//! Nothing here allocates or can panic.

use super::scan::digits;

/// A line's time as written. Classic syslog has no year and no zone; the
/// ingest layer resolves those (see `crate::clock::Resolver`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawTime {
    /// Month 1-12, day, seconds since midnight; year and zone unknown.
    Bsd { month: u8, day: u8, secs: u32 },
    /// A full local date and time with an unknown zone.
    Local { year: i32, month: u8, day: u8, secs: u32 },
    /// Seconds since the Unix epoch (zone already applied).
    Unix(i64),
}

/// The decoded header; `msg` is everything after `program[pid]: `.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header<'a> {
    pub time: RawTime,
    pub host: &'a [u8],
    pub program: &'a [u8],
    pub pid: Option<u32>,
    pub msg: &'a [u8],
}

fn month(s: &[u8]) -> Option<u8> {
    Some(match s.get(..3)? {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `hh:mm:ss` at `at` as seconds since midnight.
fn hms(s: &[u8], at: usize) -> Option<u32> {
    let h = digits(s, at, 2)?;
    let m = digits(s, at + 3, 2)?;
    let sec = digits(s, at + 6, 2)?;
    (s.get(at + 2) == Some(&b':') && s.get(at + 5) == Some(&b':') && h < 24 && m < 60 && sec < 61).then_some(h * 3600 + m * 60 + sec)
}

/// `Mmm dd hh:mm:ss` / `Mmm  d hh:mm:ss` / `Mmm d hh:mm:ss`; returns the
/// time and the rest after the following space.
fn bsd(s: &[u8]) -> Option<(RawTime, &[u8])> {
    let month = month(s)?;
    if s.get(3) != Some(&b' ') {
        return None;
    }
    let (day, at) = match (s.get(4), s.get(5)) {
        (Some(b' '), Some(d)) if d.is_ascii_digit() => (u32::from(d - b'0'), 6),
        (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => (u32::from(a - b'0') * 10 + u32::from(b - b'0'), 6),
        (Some(a), Some(b' ')) if a.is_ascii_digit() => (u32::from(a - b'0'), 5),
        _ => return None,
    };
    if s.get(at) != Some(&b' ') || !(1..=31).contains(&day) {
        return None;
    }
    let secs = hms(s, at + 1)?;
    let rest = s.get(at + 9..)?;
    let rest = rest.strip_prefix(b" ")?;
    let day = u8::try_from(day).ok()?;
    Some((RawTime::Bsd { month, day, secs }, rest))
}

/// `YYYY-MM-DD` at the start.
fn date(s: &[u8]) -> Option<(i32, u8, u8)> {
    let y = digits(s, 0, 4)?;
    let m = digits(s, 5, 2)?;
    let d = digits(s, 8, 2)?;
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some((i32::try_from(y).ok()?, u8::try_from(m).ok()?, u8::try_from(d).ok()?))
}

/// RFC 3339: `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)` then a space.
fn rfc3339(s: &[u8]) -> Option<(RawTime, &[u8])> {
    let (y, mo, d) = date(s)?;
    if !matches!(s.get(10), Some(b'T' | b't')) {
        return None;
    }
    let secs = hms(s, 11)?;
    let mut at = 19;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let n = s.get(at..)?.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        at += n;
    }
    let offset: i64 = match s.get(at)? {
        b'Z' | b'z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let h = digits(s, at + 1, 2)?;
            let m = digits(s, at + 4, 2)?;
            if s.get(at + 3) != Some(&b':') || h > 23 || m > 59 {
                return None;
            }
            at += 6;
            let o = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let rest = s.get(at..)?.strip_prefix(b" ")?;
    let unix = days_from_civil(y, mo, d) * 86_400 + i64::from(secs) - offset;
    Some((RawTime::Unix(unix), rest))
}

/// Dovecot `log_path` stamp `YYYY-MM-DD hh:mm:ss ` (no zone).
fn local_datetime(s: &[u8]) -> Option<(RawTime, &[u8])> {
    let (year, month, day) = date(s)?;
    if s.get(10) != Some(&b' ') {
        return None;
    }
    let secs = hms(s, 11)?;
    let rest = s.get(19..)?.strip_prefix(b" ")?;
    Some((RawTime::Local { year, month, day, secs }, rest))
}

/// tai64n label `@4000000058f0d1b51d5c7a34 `.
fn tai64n(s: &[u8]) -> Option<(RawTime, &[u8])> {
    let hex = s.get(1..17)?;
    if s.first() != Some(&b'@') || s.get(25) != Some(&b' ') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in hex {
        let d = (c as char).to_digit(16)?;
        v = (v << 4) | u64::from(d);
    }
    // TAI64 labels are 2^62 + seconds; TAI runs 10 s ahead of UTC at the epoch
    // (later leap seconds are ignored: the error is at most ~27 s).
    let secs = i64::try_from(v.checked_sub(1 << 62)?).ok()? - 10;
    Some((RawTime::Unix(secs), &s[26..]))
}

/// Position of the first byte at or after `from` that ends (or opens a
/// parenthesised part of) a program name: space, `[`, `:` or `(`. Eight
/// bytes at a time: each word is tested for the four bytes at once (the
/// lowest flagged byte is exact; only bytes above a match can be flagged
/// wrongly, and they are ignored).
fn program_delim(s: &[u8], from: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    fn has(x: u64, c: u8) -> u64 {
        let y = x ^ (LO * u64::from(c));
        y.wrapping_sub(LO) & !y & HI
    }
    let rest = s.get(from..)?;
    let mut words = rest.chunks_exact(8);
    for (n, w) in words.by_ref().enumerate() {
        let x = u64::from_le_bytes(w.try_into().ok()?);
        let m = has(x, b' ') | has(x, b'[') | has(x, b':') | has(x, b'(');
        if m != 0 {
            return Some(from + n * 8 + (m.trailing_zeros() / 8) as usize);
        }
    }
    let tail = words.remainder();
    let i = tail.iter().position(|&c| matches!(c, b' ' | b'[' | b':' | b'('))?;
    Some(s.len() - tail.len() + i)
}

/// Splits `prog[pid]: msg` or `prog: msg`. The program is one token without
/// spaces; a `(...)` suffix like `auth-worker(default)` stays part of it, even
/// with a `:` inside (Dovecot 2.4: `auth(user,ip,sasl:login)<session>: …`).
fn program(s: &[u8]) -> Option<(&[u8], Option<u32>, &[u8])> {
    let mut from = 0;
    let end = loop {
        let i = program_delim(s, from)?;
        if s[i] != b'(' {
            break i;
        }
        // Skip a space-free `(...)`; an unmatched `(` is an ordinary byte.
        let inner = &s[i + 1..];
        from = match inner.iter().position(|&c| c == b')' || c == b' ') {
            Some(close) if inner[close] == b')' => i + 1 + close + 1,
            _ => i + 1,
        };
    };
    let prog = &s[..end];
    if prog.is_empty() {
        return None;
    }
    match s[end] {
        b'[' => {
            let close = end + 1 + super::scan::find_byte(b']', &s[end + 1..])?;
            let pid = super::scan::parse_u32(&s[end + 1..close]);
            let rest = s.get(close + 1..)?;
            let rest = rest.strip_prefix(b":")?;
            Some((prog, pid, rest.strip_prefix(b" ").unwrap_or(rest)))
        }
        b':' => {
            let rest = &s[end + 1..];
            if rest.is_empty() || rest[0] == b' ' { Some((prog, None, rest.strip_prefix(b" ").unwrap_or(rest))) } else { None }
        }
        _ => None,
    }
}

/// Dovecot writes `Info: ` (and other levels) in front of the process name
/// in some `log_path` set-ups: `Jun 23 15:04:05 Info: imap-login: Login: …`.
fn is_level(word: &[u8]) -> bool {
    matches!(word, b"Info" | b"Warn" | b"Warning" | b"Error" | b"Fatal" | b"Panic" | b"Debug")
}

/// After the time stamp: `[host ]program[pid]: msg`.
#[inline]
fn host_and_program(time: RawTime, s: &[u8]) -> Option<Header<'_>> {
    let sp = super::scan::find_byte(b' ', s);
    // First token ends with ':' (or `[pid]:`) -> no host.
    let first = &s[..sp.unwrap_or(s.len())];
    if first.ends_with(b":") {
        let (program, pid, msg) = program(s)?;
        if is_level(program) {
            let (program, pid, msg) = self::program(msg)?;
            return Some(Header { time, host: b"", program, pid, msg });
        }
        return Some(Header { time, host: b"", program, pid, msg });
    }
    let sp = sp?;
    let host = &s[..sp];
    let (program, pid, msg) = program(&s[sp + 1..])?;
    if is_level(program) {
        let (program, pid, msg) = self::program(msg)?;
        return Some(Header { time, host, program, pid, msg });
    }
    Some(Header { time, host, program, pid, msg })
}

/// Decodes the header of `line` in any of the auto-detected formats.
#[inline]
pub(crate) fn header(line: &[u8]) -> Option<Header<'_>> {
    let (time, rest) = stamp(line)?;
    host_and_program(time, rest)
}

/// The time stamp at the start of `line` in any of the formats, and the
/// rest after it.
#[inline]
fn stamp(line: &[u8]) -> Option<(RawTime, &[u8])> {
    let first = *line.first()?;
    if first.is_ascii_digit() {
        if let Some((t, rest)) = rfc3339(line) {
            // prepend-rfc3339: a classic stamp follows; skip it, keep ours.
            let rest = bsd(rest).map_or(rest, |(_, r)| r);
            Some((t, rest))
        } else {
            local_datetime(line)
        }
    } else if first == b'@' {
        tai64n(line)
    } else {
        bsd(line)
    }
}

/// The classic stamp of the last line [`header_cached`] decoded: in a
/// busy log most lines share their second with the line before (78 % of
/// the benchmark's), and those skip the stamp's decoding.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StampCache {
    /// The stamp's bytes (with its space), little-endian, zero past `len`.
    word: u128,
    mask: u128,
    /// Bytes of the stamp: 15 or 16.
    len: usize,
    /// Its time; `None` until a classic stamp was decoded.
    time: Option<RawTime>,
}

/// The first 16 bytes of `s` as a little-endian word.
fn word16(s: &[u8]) -> Option<u128> {
    Some(u128::from_le_bytes(s.get(..16)?.try_into().ok()?))
}

/// [`header`], remembering the last classic stamp: a line starting with
/// the same stamp bytes gets the same time without decoding them again.
/// The result is always the one [`header`] gives: a classic stamp's time
/// depends on its own bytes only, and a line starting with them takes the
/// classic path.
#[inline]
pub(crate) fn header_cached<'a>(line: &'a [u8], cache: &mut StampCache) -> Option<Header<'a>> {
    let w = word16(line);
    let (time, rest) = match (cache.time, w) {
        (Some(time), Some(w)) if w & cache.mask == cache.word => (time, &line[cache.len..]),
        _ => {
            let (time, rest) = stamp(line)?;
            let len = line.len() - rest.len();
            if let (RawTime::Bsd { .. }, Some(w), 15..=16) = (time, w, len) {
                let mask = if len == 16 { u128::MAX } else { (1u128 << (8 * len)) - 1 };
                *cache = StampCache { word: w & mask, mask, len, time: Some(time) };
            }
            (time, rest)
        }
    };
    host_and_program(time, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Header<'_> {
        header(s.as_bytes()).expect(s)
    }

    #[test]
    fn classic_padded_unpadded_and_hostless() {
        let x = h("Mar  6 07:08:59 host postfix/qmgr[28829]: A1E1E1880093: removed");
        assert_eq!(x.time, RawTime::Bsd { month: 3, day: 6, secs: 7 * 3600 + 8 * 60 + 59 });
        assert_eq!(x.host, b"host");
        assert_eq!(x.program, b"postfix/qmgr");
        assert_eq!(x.pid, Some(28829));
        assert_eq!(x.msg, b"A1E1E1880093: removed");
        let x = h("Jun 3 10:40:57 mail postfix/smtpd[1]: x");
        assert_eq!(x.time, RawTime::Bsd { month: 6, day: 3, secs: 38457 });
        let x = h("Jan 29 09:33:58 pop3-login: Info: Login: user=<a>");
        assert_eq!((x.host, x.program, x.msg), (&b""[..], &b"pop3-login"[..], &b"Info: Login: user=<a>"[..]));
        let x = h("Jun 23 15:04:05 Info: imap-login: Login: user=<u>");
        assert_eq!((x.host, x.program), (&b""[..], &b"imap-login"[..]));
    }

    #[test]
    fn rfc3339_variants() {
        let x = h("2023-03-14T00:00:31.185246+01:00 helga postfix/smtpd[1]: connect from a[1.2.3.4]");
        assert_eq!(x.time, RawTime::Unix(1_678_748_431));
        let x = h("2021-03-08T07:21:23.496826493Z Mar  8 07:21:23 mail postfix/anvil[2990]: statistics");
        assert_eq!(x.time, RawTime::Unix(1_615_188_083));
        assert_eq!(x.host, b"mail");
        let x = h("2021-06-16T13:53:50+02:00 Jun 16 13:53:50 mailgate postfix/smtpd[20252]: connect");
        assert_eq!(x.program, b"postfix/smtpd");
    }

    #[test]
    fn dovecot_log_path_and_tai64n() {
        let x = h("2013-08-11 03:56:40 auth-worker(default): Info: pam(u,1.2.3.4): failed");
        assert_eq!(x.program, b"auth-worker(default)");
        assert!(matches!(x.time, RawTime::Local { year: 2013, month: 8, day: 11, .. }));
        let x = h("@400000004c91b044077a9e94 imap-login: Info: Aborted login");
        assert_eq!(x.program, b"imap-login");
        assert_eq!(x.time, RawTime::Unix(0x4c91_b044 - 10));
    }

    proptest::proptest! {
        #[test]
        fn program_delim_matches_a_plain_scan(s in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b' '), proptest::strategy::Just(b'['), proptest::strategy::Just(b':'),
            proptest::strategy::Just(b'('), proptest::prelude::any::<u8>()], 0..40), from in 0usize..48) {
            let want = s.get(from..).and_then(|r| r.iter().position(|&c| matches!(c, b' ' | b'[' | b':' | b'(')).map(|i| from + i));
            proptest::prop_assert_eq!(program_delim(&s, from), want);
        }
    }

    #[test]
    fn odd_pids_leave_the_header_valid() {
        for (p, want) in [("[]", None), ("[12a]", None), ("[4294967296]", None), ("[4294967295]", Some(u32::MAX)), ("[007]", Some(7))] {
            let line = format!("Mar  6 07:08:59 host postfix/qmgr{p}: A1E1E1880093: removed");
            let x = h(&line);
            assert_eq!((x.program, x.pid, x.msg), (&b"postfix/qmgr"[..], want, &b"A1E1E1880093: removed"[..]), "{line}");
        }
        assert!(header(b"Mar  6 07:08:59 host postfix/qmgr[12: x").is_none());
    }

    #[test]
    fn garbage_is_rejected() {
        for s in ["", "x", "Mar", "Mar 66 00:00:00 h p: m", "2023-13-01T00:00:00Z h p: m", "@40", "Jan: x"] {
            assert!(header(s.as_bytes()).is_none(), "{s}");
        }
    }
}
