//! Byte-scanning helpers shared by the parsers: no allocation, no panics.
//!
//! Every function takes a borrowed slice and returns sub-slices of it, so
//! the parsed view can never outlive or copy the line it came from.

use memchr::memmem;

/// A substring finder built once per call site (building one per call
/// costs more than the search on short log lines).
macro_rules! finder {
    ($n:literal) => {{
        static F: std::sync::LazyLock<memchr::memmem::Finder<'static>> = std::sync::LazyLock::new(|| memchr::memmem::Finder::new($n));
        &*F
    }};
}
pub(crate) use finder;

/// Splits `s` at the first occurrence of the finder's needle, dropping it.
pub(crate) fn split_once<'a>(s: &'a [u8], f: &memmem::Finder<'_>) -> Option<(&'a [u8], &'a [u8])> {
    let i = f.find(s)?;
    Some((&s[..i], &s[i + f.needle().len()..]))
}

/// Position of the first `b` followed by a space (`": "`, `", "`), found
/// with memchr.
pub(crate) fn find_then_space(b: u8, s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b, &s[from..]) {
        let at = from + i;
        if s.get(at + 1) == Some(&b' ') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Splits at the first `": "` (the most common separator).
pub(crate) fn split_colon(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = find_then_space(b':', s)?;
    Some((&s[..at], &s[at + 2..]))
}

/// Position of byte `b` in a short slice. memchr's vector set-up costs more
/// than a plain scan over the few bytes of a pid, host or program name.
#[inline]
pub(crate) fn find_byte(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// Position of the last byte `b` in a short slice.
#[inline]
pub(crate) fn rfind_byte(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().rposition(|&c| c == b)
}

/// Parses an unsigned decimal integer, rejecting empty input and overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

/// Leading decimal digits of `s` as a number and the rest.
pub(crate) fn leading_u32(s: &[u8]) -> Option<(u32, &[u8])> {
    leading_u64(s).and_then(|(n, rest)| Some((u32::try_from(n).ok()?, rest)))
}

/// Leading decimal digits of `s` as a `u64`, and the rest.
pub(crate) fn leading_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    Some((parse_u64(&s[..n])?, &s[n..]))
}

/// Parses a fixed-width run of ASCII digits.
pub(crate) fn digits(s: &[u8], at: usize, width: usize) -> Option<u32> {
    let d = s.get(at..at + width)?;
    let mut n = 0u32;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// The value of `key` (e.g. `b"rip="`, always ending in `=`) in a
/// `, `-separated list, up to the next `,` or space. Keys are matched at the
/// start or after a space, `,`, `(` or tab. Found from the `=` signs, which
/// are few, rather than with a substring search.
pub(crate) fn field<'a>(s: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    debug_assert!(key.ends_with(b"="), "field keys end with '='");
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'=', &s[from..]) {
        let eq = from + i;
        from = eq + 1;
        let Some(at) = (eq + 1).checked_sub(key.len()) else { continue };
        if &s[at..=eq] == key && (at == 0 || matches!(s[at - 1], b' ' | b',' | b'(' | b'\t')) {
            let v = &s[eq + 1..];
            let end = v.iter().position(|&c| c == b',' || c == b' ').unwrap_or(v.len());
            return Some(&v[..end]);
        }
    }
    None
}

/// Strips one pair of angle brackets: `<a@b>` -> `a@b`; unbracketed input is
/// returned as is.
pub(crate) fn unbracket(s: &[u8]) -> &[u8] {
    match s {
        [b'<', inner @ .., b'>'] => inner,
        _ => s,
    }
}

/// A `<...>` value at the start of `s`: returns the inner text and the rest
/// after the closing bracket. Addresses may contain `>` only when quoted,
/// which Postfix logs without the quotes being balanced-checked, so the
/// first `>` followed by `,`, space or end closes the value.
pub(crate) fn angle(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_prefix(b"<")?;
    let mut from = 0;
    loop {
        let i = from + memchr::memchr(b'>', &s[from..])?;
        match s.get(i + 1) {
            None | Some(b',' | b' ' | b':' | b';' | b')') => return Some((&s[..i], &s[i + 1..])),
            _ => from = i + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_matches_only_at_word_start() {
        assert_eq!(field(b"xrip=1, rip=2.3.4.5, lip=1", b"rip="), Some(&b"2.3.4.5"[..]));
        assert_eq!(field(b"user=<a>, method=PLAIN", b"method="), Some(&b"PLAIN"[..]));
        assert_eq!(field(b"nothing", b"rip="), None);
        assert_eq!(field(b"from=<a> to=<b> proto=ESMTP", b"to="), Some(&b"<b>"[..]));
        assert_eq!(field(b"proto=ESMTP", b"to="), None);
        assert_eq!(field(b"x=y=z, to=1", b"to="), Some(&b"1"[..]));
        assert_eq!(split_colon(b"a:b: c"), Some((&b"a:b"[..], &b"c"[..])));
    }

    /// The plain definition: the first occurrence of `key` at a word start.
    fn field_oracle<'a>(s: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        (0..s.len()).find_map(|at| {
            let starts = at == 0 || matches!(s[at - 1], b' ' | b',' | b'(' | b'\t');
            (starts && s[at..].starts_with(key)).then(|| {
                let v = &s[at + key.len()..];
                &v[..v.iter().position(|&c| c == b',' || c == b' ').unwrap_or(v.len())]
            })
        })
    }

    proptest::proptest! {
        #[test]
        fn field_matches_the_oracle(
            s in proptest::collection::vec(proptest::sample::select(b"to=rip, (\tx<>".to_vec()), 0..60),
            key in proptest::sample::select(vec![&b"to="[..], b"rip=", b"o=", b"="]),
        ) {
            proptest::prop_assert_eq!(field(&s, key), field_oracle(&s, key));
        }
    }

    #[test]
    fn angle_stops_at_delimiting_bracket() {
        assert_eq!(angle(b"<a@b>, x"), Some((&b"a@b"[..], &b", x"[..])));
        assert_eq!(angle(b"<a>b@c>, x"), Some((&b"a>b@c"[..], &b", x"[..])));
        assert_eq!(angle(b"<>"), Some((&b""[..], &b""[..])));
        assert_eq!(angle(b"<unterminated"), None);
    }

    #[test]
    fn numbers_reject_garbage() {
        assert_eq!(parse_u64(b"123"), Some(123));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(leading_u32(b"12 attempts"), Some((12, &b" attempts"[..])));
    }
}
