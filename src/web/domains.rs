//! Remote-domain grouping for the dashboard: maps a recipient domain, or
//! the MX host a message was relayed to, onto a provider group ("Google",
//! "Microsoft", "Yahoo", …) so traffic to thousands of domains reads as a
//! handful of providers. A company domain hosted by Google Workspace or
//! Microsoft 365 groups with its provider through its relay host.
//!
//! The mapping is text (format at the top of `web/domain-mapping.txt`):
//! `Group name: pattern pattern …` lines, where a pattern is an exact
//! domain (`gmail.com`) or `*.suffix` for every name strictly below the
//! suffix (`*.google.com` matches `aspmx.l.google.com`, not `google.com`).
//! The built-in file is embedded; an admin's file is merged over it, its
//! patterns replacing equal ones.
//!
//! Look-ups allocate nothing and cost one hash probe per label: exact
//! names first, then wildcard suffixes from the longest (most specific) to
//! the shortest, so `*.mail.example.com` beats `*.example.com` and an exact
//! name beats both. Bounds: a file is at most [`DOMAIN_MAP_MAX_FILE_BYTES`] and holds
//! at most [`DOMAIN_MAP_MAX_ENTRIES`] patterns (a merged map at most the sum of its
//! parts); names are at most 253 bytes, as in DNS. Parsing never panics;
//! every error names its line.

use crate::limits::{DOMAIN_MAP_MAX_ENTRIES, DOMAIN_MAP_MAX_FILE_BYTES};
use std::collections::HashMap;
use std::fmt;

/// Longest group name, in characters.
const MAX_GROUP_CHARS: usize = 64;
/// Longest domain name without its final dot (RFC 1035).
const MAX_NAME: usize = 253;
/// Longest label of a domain name (RFC 1035).
const MAX_LABEL: usize = 63;
/// Characters of a bad pattern quoted in an error.
const MAX_QUOTE: usize = 80;

/// The built-in mapping (embedded, see `web::assets`).
fn builtin_text() -> &'static str {
    super::assets::bundled("domain-mapping.txt")
}

/// Domain patterns → provider group names. Build it once (at start-up);
/// look-ups take `&self`.
#[derive(Clone, Debug, Default)]
pub struct DomainMap {
    /// Group names, in order of first appearance.
    groups: Vec<Box<str>>,
    /// Lower-case exact names → index into `groups`.
    /// Invariant: every index is `< groups.len()`.
    exact: HashMap<Box<str>, usize>,
    /// Lower-case suffixes of `*.suffix` patterns (without `*.`) → index
    /// into `groups`. Invariant: every index is `< groups.len()`.
    wild: HashMap<Box<str>, usize>,
}

/// Why a mapping file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// The file is larger than [`DOMAIN_MAP_MAX_FILE_BYTES`].
    TooLarge { bytes: usize },
    /// Line `line` (1-based) is wrong.
    Line { line: usize, problem: Problem },
}

/// What is wrong with one line of a mapping file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No `:` between group name and patterns.
    MissingColon,
    /// Nothing before the `:`.
    EmptyGroup,
    /// A group name longer than 64 characters.
    GroupTooLong,
    /// A control character in the group name.
    GroupControl,
    /// Nothing after the `:`.
    NoPatterns,
    /// A pattern that is not a domain name or `*.suffix`.
    BadPattern { pattern: String, why: &'static str },
    /// A pattern already given to another group in the same file.
    Conflict { pattern: String, group: String, line: usize },
    /// More than [`DOMAIN_MAP_MAX_ENTRIES`] patterns.
    TooManyEntries,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::TooLarge { bytes } => {
                write!(f, "the domain mapping is {bytes} bytes, more than the {DOMAIN_MAP_MAX_FILE_BYTES} accepted")
            }
            MapError::Line { line, problem } => write!(f, "line {line}: {problem}"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingColon => f.write_str("expected `Group name: domain domain *.suffix …` (no `:` found)"),
            Problem::EmptyGroup => f.write_str("the group name before `:` is empty"),
            Problem::GroupTooLong => write!(f, "the group name is longer than {MAX_GROUP_CHARS} characters"),
            Problem::GroupControl => f.write_str("the group name contains a control character"),
            Problem::NoPatterns => f.write_str("no domains after `:`"),
            Problem::BadPattern { pattern, why } => write!(f, "`{pattern}`: {why}"),
            Problem::Conflict { pattern, group, line } => write!(f, "`{pattern}` already belongs to group `{group}` (line {line})"),
            Problem::TooManyEntries => write!(f, "more than {DOMAIN_MAP_MAX_ENTRIES} domains"),
        }
    }
}

impl std::error::Error for MapError {}

impl DomainMap {
    /// Parses a mapping file (format: the top of `web/domain-mapping.txt`).
    /// A group may span several lines; a pattern repeated within its group
    /// is ignored.
    ///
    /// # Errors
    /// The text is over [`DOMAIN_MAP_MAX_FILE_BYTES`], or a line is malformed, has a
    /// bad pattern, gives a pattern to a second group, or brings the count
    /// over [`DOMAIN_MAP_MAX_ENTRIES`]; the error names the first such line.
    pub fn parse(text: &str) -> Result<DomainMap, MapError> {
        if text.len() > DOMAIN_MAP_MAX_FILE_BYTES {
            return Err(MapError::TooLarge { bytes: text.len() });
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut map = DomainMap::default();
        let mut group_index: HashMap<&str, usize> = HashMap::new();
        // Pattern (as written in the map, `*.` kept for wildcards) → the
        // line that set it, for conflict messages.
        let mut set_on: HashMap<String, usize> = HashMap::new();
        let mut patterns: Vec<(bool, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |problem| MapError::Line { line, problem };
            let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if content.is_empty() {
                continue;
            }
            let (name, rest) = content.split_once(':').ok_or(err(Problem::MissingColon))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(err(Problem::EmptyGroup));
            }
            if name.chars().nth(MAX_GROUP_CHARS).is_some() {
                return Err(err(Problem::GroupTooLong));
            }
            if name.chars().any(char::is_control) {
                return Err(err(Problem::GroupControl));
            }
            patterns.clear();
            for p in rest.split_whitespace() {
                let parsed = normalise(p).map_err(|why| err(Problem::BadPattern { pattern: quote(p), why }))?;
                patterns.push(parsed);
            }
            if patterns.is_empty() {
                return Err(err(Problem::NoPatterns));
            }
            let gi = *group_index.entry(name).or_insert_with(|| {
                map.groups.push(name.into());
                map.groups.len() - 1
            });
            for (wild, key) in patterns.drain(..) {
                let table = if wild { &mut map.wild } else { &mut map.exact };
                match table.get(key.as_str()) {
                    Some(&g) if g == gi => {}
                    Some(&g) => {
                        let shown = if wild { format!("*.{key}") } else { key };
                        let first = set_on.get(&shown).copied().unwrap_or(0);
                        let group = map.groups.get(g).map(ToString::to_string).unwrap_or_default();
                        return Err(err(Problem::Conflict { pattern: quote(&shown), group, line: first }));
                    }
                    None => {
                        if map.exact.len() + map.wild.len() >= DOMAIN_MAP_MAX_ENTRIES {
                            return Err(err(Problem::TooManyEntries));
                        }
                        set_on.insert(if wild { format!("*.{key}") } else { key.clone() }, line);
                        let table = if wild { &mut map.wild } else { &mut map.exact };
                        table.insert(key.into_boxed_str(), gi);
                    }
                }
            }
        }
        Ok(map)
    }

    /// The built-in mapping (`web/domain-mapping.txt`, embedded). Parses
    /// the text on each call: call it once.
    ///
    /// # Panics
    /// Never: the embedded file parses, which a unit test pins.
    pub fn builtin() -> DomainMap {
        DomainMap::parse(builtin_text()).expect("the built-in domain mapping parses (pinned by a unit test)")
    }

    /// Adds `other`'s patterns (the admin's file) over these: a pattern in
    /// both now maps to `other`'s group. Groups of the same name are one
    /// group. Specificity still comes first: an exact name beats any
    /// wildcard, a longer suffix a shorter one, whichever file they are in.
    pub fn merge(&mut self, other: DomainMap) {
        let mut index: HashMap<Box<str>, usize> = self.groups.iter().enumerate().map(|(i, g)| (g.clone(), i)).collect();
        let remap: Vec<usize> = other
            .groups
            .into_iter()
            .map(|g| {
                *index.entry(g.clone()).or_insert_with(|| {
                    self.groups.push(g);
                    self.groups.len() - 1
                })
            })
            .collect();
        for (key, g) in other.exact {
            if let Some(&g) = remap.get(g) {
                self.exact.insert(key, g);
            }
        }
        for (key, g) in other.wild {
            if let Some(&g) = remap.get(g) {
                self.wild.insert(key, g);
            }
        }
    }

    /// The group of a message to `recipient_domain` (a bare domain, or an
    /// address whose part after the last `@` is used) that was relayed to
    /// `relay_host` (a host name, or Postfix's `relay=` value such as
    /// `gmail-smtp-in.l.google.com[142.250.102.27]:25`). The recipient
    /// domain decides when it is mapped, else the relay host. Case and a
    /// final dot do not matter.
    pub fn group(&self, recipient_domain: &str, relay_host: Option<&str>) -> Option<&str> {
        let domain = recipient_domain.rsplit_once('@').map_or(recipient_domain, |(_, d)| d);
        self.lookup(domain).or_else(|| relay_host.and_then(|r| self.lookup(relay_name(r))))
    }

    /// The group of one name: exact match, else the longest wildcard
    /// suffix. Lower-cases into a stack buffer; names longer than DNS
    /// allows match nothing.
    fn lookup(&self, name: &str) -> Option<&str> {
        let name = name.trim();
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid, so this always succeeds.
        let lower = std::str::from_utf8(lower).ok()?;
        let g = self.exact.get(lower).or_else(|| lower.match_indices('.').find_map(|(i, _)| self.wild.get(lower.get(i + 1..)?)))?;
        self.groups.get(*g).map(|g| &**g)
    }
}

/// The host name of a relay: Postfix's `host[address]:port` or `host:port`
/// cut at the `[` or `:`.
fn relay_name(relay: &str) -> &str {
    relay.split(['[', ':']).next().unwrap_or(relay)
}

/// A pattern checked and lower-cased: `(is_wildcard, name)`, the name
/// without `*.` and without a final dot.
fn normalise(p: &str) -> Result<(bool, String), &'static str> {
    let (wild, name) = match p.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, p),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.contains('*') {
        return Err("`*` is allowed only as a whole first label, as in `*.example.com`");
    }
    if name.is_empty() {
        return Err("empty domain name");
    }
    if !name.is_ascii() {
        return Err("not ASCII: write internationalised names in their `xn--` form");
    }
    if name.len() > MAX_NAME {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > MAX_LABEL {
            return Err("a label longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("only letters, digits, `-` and `_` are allowed in a domain name");
        }
    }
    Ok((wild, name.to_ascii_lowercase()))
}

/// `s` cut to `MAX_QUOTE` characters for an error message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTE) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn map(text: &str) -> DomainMap {
        DomainMap::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn line_err(text: &str) -> (usize, Problem) {
        match DomainMap::parse(text) {
            Err(MapError::Line { line, problem }) => (line, problem),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn parses_groups_comments_and_blank_lines() {
        let m = map(
            "# providers\n\nGoogle: gmail.com googlemail.com *.google.com  # MX hosts too\n  Big Co : big.example\r\nGoogle: *.googlemail.com\n",
        );
        assert_eq!(m.group("gmail.com", None), Some("Google"));
        assert_eq!(m.group("googlemail.com", None), Some("Google"));
        assert_eq!(m.group("aspmx2.googlemail.com", None), Some("Google"), "a group spans lines");
        assert_eq!(m.group("big.example", None), Some("Big Co"), "names are trimmed, CRLF is fine");
        assert_eq!(m.groups.len(), 2);
        assert_eq!(m.exact.len() + m.wild.len(), 5);
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_maps() {
        for text in ["", "\n\n", "# nothing\n   # here\n", "\u{feff}# BOM\n"] {
            let m = map(text);
            assert!(m.groups.is_empty() && m.exact.is_empty() && m.wild.is_empty());
            assert_eq!(m.group("gmail.com", Some("x.google.com")), None);
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(line_err("# ok\nGoogle: gmail.com\ngmail.com\n"), (3, Problem::MissingColon));
        assert_eq!(line_err("\n : gmail.com"), (2, Problem::EmptyGroup));
        assert_eq!(line_err("Google:   # nothing\n"), (1, Problem::NoPatterns));
        assert_eq!(line_err(&format!("{}: a.example", "g".repeat(65))), (1, Problem::GroupTooLong));
        assert_eq!(line_err("Goo\u{7}gle: a.example"), (1, Problem::GroupControl));
        let cases = [
            ("foo..com", "empty label"),
            (".foo.com", "empty label"),
            ("*.", "empty domain name"),
            ("*", "`*` is allowed only"),
            ("a.*.com", "`*` is allowed only"),
            ("*.*.com", "`*` is allowed only"),
            ("hotmail.*", "`*` is allowed only"),
            ("bücher.de", "xn--"),
            ("ex@mple.com", "only letters"),
            ("a/b.com", "only letters"),
        ];
        for (pattern, why) in cases {
            let (line, problem) = line_err(&format!("A: ok.example\nB: {pattern}\n"));
            assert_eq!(line, 2, "{pattern}");
            let Problem::BadPattern { pattern: p, why: w } = &problem else { panic!("{pattern}: {problem:?}") };
            assert_eq!(p, pattern);
            assert!(w.contains(why), "{pattern}: {w}");
        }
        let (_, p) = line_err(&format!("A: {}.com", "a".repeat(64)));
        assert!(matches!(p, Problem::BadPattern { why, .. } if why.contains("63")));
        let (_, p) = line_err(&format!("A: {}com", "abcdefghi.".repeat(26)));
        assert!(matches!(p, Problem::BadPattern { ref pattern, why } if why.contains("253") && pattern.ends_with('…')), "{p:?}");
    }

    #[test]
    fn error_messages_read_well() {
        let e = DomainMap::parse("Google: gmail.com\n\nOther: GMail.com\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: `gmail.com` already belongs to group `Google` (line 1)");
        let e = DomainMap::parse("A: *.x.example\nB: *.X.example.\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: `*.x.example` already belongs to group `A` (line 1)");
        let e = DomainMap::parse("A: a..b").unwrap_err();
        assert_eq!(e.to_string(), "line 1: `a..b`: empty label (two dots in a row, or a leading dot)");
        let e = DomainMap::parse("gmail.com").unwrap_err();
        assert!(e.to_string().starts_with("line 1: expected `Group name: "), "{e}");
    }

    #[test]
    fn exact_and_wildcard_of_one_name_are_different_patterns() {
        // `example.com` and `*.example.com` may go to different groups,
        // and a pattern repeated in its own group is fine.
        let m = map("A: example.com\nB: *.example.com\nA: example.com EXAMPLE.com");
        assert_eq!(m.group("example.com", None), Some("A"));
        assert_eq!(m.group("mx.example.com", None), Some("B"));
    }

    #[test]
    fn too_many_entries_and_too_large() {
        let mut text = String::new();
        for i in 0..DOMAIN_MAP_MAX_ENTRIES {
            let _ = writeln!(text, "G: d{i}.example");
        }
        assert_eq!(map(&text).exact.len(), DOMAIN_MAP_MAX_ENTRIES);
        text.push_str("G: one-more.example\n");
        assert_eq!(line_err(&text), (DOMAIN_MAP_MAX_ENTRIES + 1, Problem::TooManyEntries));
        let big = "#".repeat(DOMAIN_MAP_MAX_FILE_BYTES + 1);
        assert_eq!(DomainMap::parse(&big).unwrap_err(), MapError::TooLarge { bytes: DOMAIN_MAP_MAX_FILE_BYTES + 1 });
    }

    #[test]
    fn wildcard_matches_only_below_its_suffix() {
        let m = map("W: *.example.com\nE: exact.example.org");
        assert_eq!(m.group("a.example.com", None), Some("W"));
        assert_eq!(m.group("a.b.c.example.com", None), Some("W"));
        assert_eq!(m.group("example.com", None), None, "the suffix itself is not below it");
        assert_eq!(m.group("badexample.com", None), None, "label boundaries, not string suffixes");
        assert_eq!(m.group("exact.example.org", None), Some("E"));
        assert_eq!(m.group("sub.exact.example.org", None), None, "exact names do not cover subdomains");
        assert_eq!(m.group("example.org", None), None);
    }

    #[test]
    fn most_specific_pattern_wins() {
        let m = map("Broad: *.example.com\nNarrow: *.mail.example.com\nExact: mx.mail.example.com\n");
        assert_eq!(m.group("www.example.com", None), Some("Broad"));
        assert_eq!(m.group("in.mail.example.com", None), Some("Narrow"));
        assert_eq!(m.group("mx.mail.example.com", None), Some("Exact"));
        assert_eq!(m.group("a.mx.mail.example.com", None), Some("Narrow"));
    }

    #[test]
    fn matching_ignores_case_and_a_final_dot() {
        let m = map("Google: GMail.COM *.Google.Com.");
        assert_eq!(m.group("gmail.com", None), Some("Google"));
        assert_eq!(m.group("GMAIL.COM", None), Some("Google"));
        assert_eq!(m.group("gmail.com.", None), Some("Google"));
        assert_eq!(m.group("ASPMX.L.GOOGLE.COM", None), Some("Google"));
        assert_eq!(m.group("User.Name@GMail.com", None), Some("Google"), "an address works too");
    }

    #[test]
    fn relay_host_groups_hosted_domains() {
        let m = map("Google: gmail.com *.google.com\nCorp: corp.example");
        assert_eq!(m.group("hosted.example", Some("aspmx.l.google.com")), Some("Google"));
        assert_eq!(m.group("hosted.example", Some("gmail-smtp-in.l.google.com[142.250.102.27]:25")), Some("Google"));
        assert_eq!(m.group("hosted.example", Some("Alt1.Aspmx.L.Google.com:25")), Some("Google"));
        assert_eq!(m.group("hosted.example", Some("mx.other.example[192.0.2.1]:25")), None);
        assert_eq!(m.group("hosted.example", Some("none")), None);
        assert_eq!(m.group("hosted.example", None), None);
        // A mapped recipient domain decides over its relay host.
        assert_eq!(m.group("corp.example", Some("aspmx.l.google.com")), Some("Corp"));
    }

    #[test]
    fn odd_lookups_match_nothing_and_do_not_panic() {
        let m = map("A: *.com a.example");
        for name in ["", ".", "..", "@", "a@", "com", ".com", "日本.com", &"a.".repeat(200), &format!("{}.com", "x".repeat(300))] {
            let _ = m.group(name, Some(name));
        }
        assert_eq!(m.group("", None), None);
        assert_eq!(m.group("com", None), None);
        assert_eq!(m.group(&format!("{}.com", "x".repeat(300)), None), None, "longer than DNS allows");
        assert_eq!(m.group("日本.com", None), Some("A"), "a non-ASCII label under an ASCII suffix");
        assert_eq!(m.group(".com", None), Some("A"));
    }

    #[test]
    fn the_admins_file_takes_precedence() {
        let mut m = DomainMap::builtin();
        let user = map("Our hosting: *.mx.example.net\nCorp mail: gmail.com\nGoogle: corp.example\nMicrosoft: *.outlook.com\n");
        m.merge(user);
        assert_eq!(m.group("gmail.com", None), Some("Corp mail"), "an equal pattern is the user's");
        assert_eq!(m.group("googlemail.com", None), Some("Google"), "others stay");
        assert_eq!(m.group("corp.example", None), Some("Google"), "same-named groups are one");
        assert_eq!(m.group("x.example", Some("in.mx.example.net")), Some("Our hosting"));
        assert_eq!(m.group("outlook.com", None), Some("Microsoft"));
        assert_eq!(m.groups.iter().filter(|g| &***g == "Google").count(), 1);
        // Specificity before precedence: the user's broad wildcard does not
        // take an exact name of the built-in file.
        let mut m = DomainMap::builtin();
        m.merge(map("Dotcom: *.com"));
        assert_eq!(m.group("hotmail.com", None), Some("Microsoft"));
        assert_eq!(m.group("unknown.com", None), Some("Dotcom"));
    }

    #[test]
    fn builtin_map_parses_and_groups_the_big_providers() {
        let m = DomainMap::parse(builtin_text()).unwrap_or_else(|e| panic!("built-in mapping: {e}"));
        assert!(m.exact.len() + m.wild.len() > 150, "{}", m.exact.len() + m.wild.len());
        let cases = [
            ("gmail.com", None, Some("Google")),
            ("googlemail.com", None, Some("Google")),
            ("hosted.example", Some("gmail-smtp-in.l.google.com[142.250.102.27]:25"), Some("Google")),
            ("hosted.example", Some("aspmx2.googlemail.com"), Some("Google")),
            ("hotmail.co.uk", None, Some("Microsoft")),
            ("outlook.com", None, Some("Microsoft")),
            ("live.fr", None, Some("Microsoft")),
            ("hosted.example", Some("hosted-example.mail.protection.outlook.com"), Some("Microsoft")),
            ("hosted.example", Some("mta7.am0.yahoodns.net"), Some("Yahoo")),
            ("yahoo.co.jp", None, Some("Yahoo")),
            ("aol.com", None, Some("Yahoo")),
            ("ymail.com", None, Some("Yahoo")),
            ("icloud.com", None, Some("Apple")),
            ("me.com", None, Some("Apple")),
            ("hosted.example", Some("mx01.mail.icloud.com"), Some("Apple")),
            ("gmx.de", None, Some("GMX / WEB.DE")),
            ("web.de", None, Some("GMX / WEB.DE")),
            ("proton.me", None, Some("Proton")),
            ("hosted.example", Some("mail.protonmail.ch"), Some("Proton")),
            ("zohomail.eu", None, Some("Zoho")),
            ("yandex.ru", None, Some("Yandex")),
            ("bk.ru", None, Some("Mail.ru")),
            ("fastmail.com", None, Some("Fastmail")),
            ("hosted.example", Some("in1-smtp.messagingengine.com"), Some("Fastmail")),
            ("wanadoo.fr", None, Some("Orange")),
            ("free.fr", None, Some("Free")),
            ("t-online.de", None, Some("T-Online")),
            ("comcast.net", None, Some("Comcast")),
            ("qq.com", None, Some("Tencent QQ")),
            ("126.com", None, Some("NetEase")),
            ("seznam.cz", None, Some("Seznam")),
            ("libero.it", None, Some("Italiaonline")),
            ("unknown.example", None, None),
            ("unknown.example", Some("mx.unknown.example[192.0.2.7]:25"), None),
        ];
        for (domain, relay, want) in cases {
            assert_eq!(m.group(domain, relay), want, "{domain} via {relay:?}");
        }
        assert_eq!(DomainMap::builtin().groups, m.groups);
    }

    #[test]
    fn builtin_file_documents_its_format() {
        let head: String = builtin_text().lines().take_while(|l| l.starts_with('#') || l.is_empty()).collect::<Vec<_>>().join("\n");
        for needle in ["Format", "*.", "#", "line"] {
            assert!(head.contains(needle), "{needle}");
        }
    }

    /// Deterministic xorshift for the oracle test.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap()
        }
    }

    /// The fast look-up agrees with a linear scan: exact match first, else
    /// the longest wildcard suffix the name lies strictly below.
    #[test]
    fn lookup_matches_a_naive_oracle() {
        const LABELS: [&str; 6] = ["a", "b", "mx", "Mail", "example", "com"];
        let mut rng = Rng(0x1234_5678);
        let mut text = String::new();
        let mut patterns: Vec<(bool, String, String)> = Vec::new();
        for i in 0..200 {
            let name: Vec<&str> = (0..=rng.below(4)).map(|_| LABELS[rng.below(LABELS.len())]).collect();
            let name = name.join(".").to_ascii_lowercase();
            let wild = rng.below(2) == 0;
            if patterns.iter().any(|(w, n, _)| *w == wild && *n == name) {
                continue;
            }
            let group = format!("g{i}");
            let _ = writeln!(text, "{group}: {}{name}", if wild { "*." } else { "" });
            patterns.push((wild, name, group));
        }
        let m = map(&text);
        let oracle = |q: &str| -> Option<String> {
            let q = q.to_ascii_lowercase();
            if let Some((_, _, g)) = patterns.iter().find(|(w, n, _)| !*w && *n == q) {
                return Some(g.clone());
            }
            patterns
                .iter()
                .filter(|(w, n, _)| *w && q.ends_with(&format!(".{n}")))
                .max_by_key(|(_, n, _)| n.len())
                .map(|(_, _, g)| g.clone())
        };
        for _ in 0..5_000 {
            let q: Vec<&str> = (0..=rng.below(6)).map(|_| LABELS[rng.below(LABELS.len())]).collect();
            let q = q.join(".");
            assert_eq!(m.group(&q, None).map(str::to_owned), oracle(&q), "{q}");
        }
    }
}
