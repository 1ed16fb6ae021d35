//! SPF (RFC 7208): the record's syntax, the `check_host()` evaluation for
//! the server's IP, and the count of DNS-querying terms against the limit
//! of 10 (plus at most 2 void lookups), which receivers enforce with a
//! `permerror`, i.e. as if there were no SPF at all.
//!
//! Bounds: at most [`MAX_LOOKUPS`] DNS-querying terms per evaluation (then
//! `permerror`, as the RFC says), [`MAX_VOID`] void lookups, 10 MX or PTR
//! names per term; the counting walk (no IP) stops at [`COUNT_CAP`] terms so
//! an include loop cannot run away. Parsing never panics.

use super::resolve::{Lookup, Resolver};
use crate::dns::{Data, Type};
use std::net::IpAddr;

/// RFC 7208 §4.6.4: terms that cause DNS queries, per evaluation.
pub const MAX_LOOKUPS: u32 = 10;
/// RFC 7208 §4.6.4: lookups answering NXDOMAIN or no records.
pub const MAX_VOID: u32 = 2;
/// MX or PTR names examined per `mx`/`ptr` term (§4.6.4).
const MAX_NAMES: usize = 10;
/// The counting walk gives up here (an include loop, or a huge tree).
const COUNT_CAP: u32 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    A(Option<String>, u8, u8),
    Mx(Option<String>, u8, u8),
    Ptr(Option<String>),
    Ip4(std::net::Ipv4Addr, u8),
    Ip6(std::net::Ipv6Addr, u8),
    Exists(String),
}

impl Mechanism {
    fn queries_dns(&self) -> bool {
        matches!(self, Mechanism::Include(_) | Mechanism::A(..) | Mechanism::Mx(..) | Mechanism::Ptr(_) | Mechanism::Exists(_))
    }
}

/// A parsed record: its mechanisms in order and the `redirect=` target.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Record {
    pub terms: Vec<(Qualifier, Mechanism)>,
    pub redirect: Option<String>,
}

/// Does this TXT string claim to be an SPF record (`v=spf1` then a space
/// or the end)?
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start();
    t.get(..6).is_some_and(|v| v.eq_ignore_ascii_case("v=spf1")) && t[6..].chars().next().is_none_or(|c| c == ' ')
}

/// Parses an SPF record (which [`is_spf`]).
///
/// # Errors
/// The first syntax error, in words (a receiver answers `permerror`).
pub fn parse(txt: &str) -> Result<Record, String> {
    let mut words = txt.split(' ').filter(|w| !w.is_empty());
    match words.next() {
        Some(v) if v.eq_ignore_ascii_case("v=spf1") => {}
        _ => return Err("does not start with v=spf1".into()),
    }
    let mut rec = Record::default();
    let mut exp = false;
    for w in words {
        if let Some((name, value)) = w.split_once('=')
            && !name.contains(':')
            && !name.contains('/')
        {
            if !name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!("'{w}' is not a valid modifier"));
            }
            check_macro_string(value).map_err(|e| format!("'{w}': {e}"))?;
            if name.eq_ignore_ascii_case("redirect") {
                if rec.redirect.is_some() {
                    return Err("redirect= appears twice".into());
                }
                domain_spec(value).map_err(|e| format!("'{w}': {e}"))?;
                rec.redirect = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("exp") {
                if exp {
                    return Err("exp= appears twice".into());
                }
                exp = true;
            }
            // Other modifiers are ignored (RFC 7208 §6).
            continue;
        }
        let (q, m) = match w.as_bytes()[0] {
            b'+' => (Qualifier::Pass, &w[1..]),
            b'-' => (Qualifier::Fail, &w[1..]),
            b'~' => (Qualifier::SoftFail, &w[1..]),
            b'?' => (Qualifier::Neutral, &w[1..]),
            _ => (Qualifier::Pass, w),
        };
        rec.terms.push((q, mechanism(m).map_err(|e| format!("'{w}': {e}"))?));
    }
    Ok(rec)
}

fn non_empty<'a>(name: &str, a: Option<&'a str>) -> Result<&'a str, String> {
    a.filter(|s| !s.is_empty()).ok_or_else(|| format!("{name} needs a value"))
}

fn mechanism(m: &str) -> Result<Mechanism, String> {
    let (name, rest) = match m.find([':', '/']) {
        Some(i) => (&m[..i], &m[i..]),
        None => (m, ""),
    };
    let arg = rest.strip_prefix(':');
    let need = |a| non_empty(name, a);
    match name.to_ascii_lowercase().as_str() {
        "all" if rest.is_empty() => Ok(Mechanism::All),
        "include" => Ok(Mechanism::Include(domain_spec(need(arg)?)?)),
        "exists" => Ok(Mechanism::Exists(domain_spec(need(arg)?)?)),
        "ptr" => Ok(Mechanism::Ptr(arg.map(domain_spec).transpose()?)),
        "a" | "mx" => {
            let (dom, v4, v6) = dual_cidr(rest)?;
            let dom = dom.map(domain_spec).transpose()?;
            Ok(if name.eq_ignore_ascii_case("a") { Mechanism::A(dom, v4, v6) } else { Mechanism::Mx(dom, v4, v6) })
        }
        "ip4" => {
            let v = need(arg)?;
            let (ip, len) = v.split_once('/').map_or((v, Ok(32)), |(i, l)| (i, l.parse::<u8>()));
            let len = len.ok().filter(|&l| l <= 32).ok_or_else(|| format!("bad prefix length in ip4:{v}"))?;
            Ok(Mechanism::Ip4(ip.parse().map_err(|_| format!("'{ip}' is not an IPv4 address"))?, len))
        }
        "ip6" => {
            let v = need(arg)?;
            let (ip, len) = v.split_once('/').map_or((v, Ok(128)), |(i, l)| (i, l.parse::<u8>()));
            let len = len.ok().filter(|&l| l <= 128).ok_or_else(|| format!("bad prefix length in ip6:{v}"))?;
            Ok(Mechanism::Ip6(ip.parse().map_err(|_| format!("'{ip}' is not an IPv6 address"))?, len))
        }
        _ => Err("unknown mechanism".into()),
    }
}

/// `[:domain-spec][/v4[//v6]]` of `a` and `mx`.
fn dual_cidr(rest: &str) -> Result<(Option<&str>, u8, u8), String> {
    let (dom, cidr) = match rest.strip_prefix(':') {
        Some(r) => match r.find('/') {
            Some(i) => (Some(&r[..i]), &r[i..]),
            None => (Some(r), ""),
        },
        None => (None, rest),
    };
    let bad = || format!("bad CIDR length '{cidr}'");
    let (v4, v6) = match cidr.strip_prefix("//") {
        Some(v6) => (32, v6.parse::<u8>().map_err(|_| bad())?),
        None => match cidr.strip_prefix('/') {
            None if cidr.is_empty() => (32, 128),
            None => return Err(bad()),
            Some(c) => match c.split_once("//") {
                Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
                None => (c.parse().map_err(|_| bad())?, 128),
            },
        },
    };
    if v4 > 32 || v6 > 128 {
        return Err(bad());
    }
    Ok((dom, v4, v6))
}

/// A domain-spec: a macro-string ending in a top label or a macro.
fn domain_spec(s: &str) -> Result<String, String> {
    check_macro_string(s)?;
    if s.is_empty() {
        return Err("empty domain".into());
    }
    let t = s.strip_suffix('.').unwrap_or(s);
    let ends_macro = t.ends_with('}');
    let last = t.rsplit('.').next().unwrap_or("");
    if !ends_macro && (!t.contains('.') || last.is_empty() || last.bytes().all(|b| b.is_ascii_digit()) || !valid_label(last)) {
        return Err(format!("'{s}' is not a domain"));
    }
    Ok(s.to_owned())
}

fn valid_label(l: &str) -> bool {
    !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_macro_string(s: &str) -> Result<(), String> {
    expand(s, &MacroVars::default(), true).map(|_| ())
}

/// The values macros expand to (RFC 7208 §7.2).
#[derive(Default)]
struct MacroVars {
    sender: String,
    domain: String,
    ip: Option<IpAddr>,
    helo: String,
}

/// Expands `%{…}`, `%%`, `%_`, `%-` (RFC 7208 §7). `syntax_only` checks
/// without values.
fn expand(s: &str, v: &MacroVars, syntax_only: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            if !(' '..='~').contains(&c) {
                return Err("non-ASCII or control character".into());
            }
            out.push(c);
            continue;
        }
        match chars.next().map(|(_, c)| c) {
            Some('%') => out.push('%'),
            Some('_') => out.push(' '),
            Some('-') => out.push_str("%20"),
            Some('{') => {
                let start = chars.offset();
                let end = s[start..].find('}').ok_or("unclosed %{")? + start;
                let body = &s[start..end];
                while chars.offset() <= end {
                    chars.next();
                }
                let mut b = body.chars();
                let letter = b.next().ok_or("empty macro")?.to_ascii_lowercase();
                let rest = b.as_str();
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let rest = &rest[digits.len()..];
                let (reverse, delims) = match rest.strip_prefix(['r', 'R']) {
                    Some(d) => (true, d),
                    None => (false, rest),
                };
                if !delims.chars().all(|c| ".-+,/_=".contains(c)) {
                    return Err(format!("bad macro %{{{body}}}"));
                }
                let keep: Option<usize> = if digits.is_empty() {
                    None
                } else {
                    Some(digits.parse::<usize>().ok().filter(|&n| n > 0).ok_or(format!("bad macro %{{{body}}}"))?)
                };
                let value = match letter {
                    's' => v.sender.clone(),
                    'l' => v.sender.rsplit_once('@').map_or("postmaster", |(l, _)| l).to_owned(),
                    'o' => v.sender.rsplit_once('@').map_or(v.domain.as_str(), |(_, d)| d).to_owned(),
                    'd' => v.domain.clone(),
                    'i' => match v.ip {
                        Some(IpAddr::V4(a)) => a.to_string(),
                        Some(ip @ IpAddr::V6(_)) => {
                            crate::dns::reversed(ip, "").trim_end_matches('.').split('.').rev().collect::<Vec<_>>().join(".")
                        }
                        None => String::new(),
                    },
                    // Validating the client's name costs lookups; RFC 7208 §7.3 allows "unknown".
                    'p' => "unknown".into(),
                    'v' => if matches!(v.ip, Some(IpAddr::V6(_))) { "ip6" } else { "in-addr" }.into(),
                    'h' => v.helo.clone(),
                    _ => return Err(format!("unknown macro letter in %{{{body}}}")),
                };
                if syntax_only {
                    out.push('x');
                    continue;
                }
                let split = |c: char| if delims.is_empty() { c == '.' } else { delims.contains(c) };
                let mut parts: Vec<&str> = value.split(split).collect();
                if reverse {
                    parts.reverse();
                }
                if let Some(n) = keep {
                    let skip = parts.len().saturating_sub(n);
                    parts.drain(..skip);
                }
                out.push_str(&parts.join("."));
            }
            _ => return Err("'%' not followed by {, %, _ or -".into()),
        }
    }
    Ok(out)
}

/// A `check_host()` result (RFC 7208 §2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpfResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    PermError(String),
    TempError(String),
}

impl SpfResult {
    pub fn word(&self) -> &'static str {
        match self {
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::Neutral => "neutral",
            SpfResult::None => "none",
            SpfResult::PermError(_) => "permerror",
            SpfResult::TempError(_) => "temperror",
        }
    }
}

/// One evaluation: the counters of §4.6.4 and what matched.
pub struct Eval<'r> {
    r: &'r Resolver,
    ip: Option<IpAddr>,
    sender_local: String,
    helo: String,
    /// DNS-querying terms evaluated so far.
    pub lookups: u32,
    /// Lookups that answered NXDOMAIN or nothing.
    pub voids: u32,
    /// `domain: term` for each DNS-querying term, in evaluation order.
    pub trail: Vec<String>,
    /// The term that decided (`domain: term`).
    pub matched: Option<String>,
    depth: u32,
}

impl<'r> Eval<'r> {
    /// An evaluation for `ip`; `None` walks every term without matching
    /// (counting mode: limits are counted, not enforced).
    pub fn new(r: &'r Resolver, ip: Option<IpAddr>, helo: &str) -> Eval<'r> {
        Eval {
            r,
            ip,
            sender_local: "postmaster".into(),
            helo: helo.to_owned(),
            lookups: 0,
            voids: 0,
            trail: Vec::new(),
            matched: None,
            depth: 0,
        }
    }

    /// The SPF record of `domain`: `Ok(None)` when there is none.
    ///
    /// # Errors
    /// `SpfResult::PermError` (several records) or `TempError` (no answer).
    pub fn record(&self, domain: &str) -> Result<Option<String>, SpfResult> {
        match self.r.lookup(domain, Type::Txt) {
            Ok(l @ Lookup::Found(_)) => {
                let spf: Vec<&str> = l.txts().into_iter().filter(|t| is_spf(t)).collect();
                match spf.as_slice() {
                    [] => Ok(None),
                    [one] => Ok(Some((*one).to_owned())),
                    _ => Err(SpfResult::PermError(format!("{domain} publishes {} SPF records (one is allowed)", spf.len()))),
                }
            }
            Ok(Lookup::Empty | Lookup::NoName) => Ok(None),
            Ok(Lookup::Error(rc)) => Err(SpfResult::TempError(format!("DNS error {rc} for {domain} TXT"))),
            Err(e) => Err(SpfResult::TempError(e.to_string())),
        }
    }

    fn counting(&self) -> bool {
        self.ip.is_none()
    }

    /// Counts one DNS-querying term; `Err` once past the limit.
    fn count(&mut self, domain: &str, term: &str) -> Result<(), SpfResult> {
        self.lookups += 1;
        self.trail.push(format!("{domain}: {term}"));
        if !self.counting() && self.lookups > MAX_LOOKUPS {
            return Err(SpfResult::PermError(format!("more than {MAX_LOOKUPS} DNS lookups")));
        }
        if self.counting() && self.lookups >= COUNT_CAP {
            return Err(SpfResult::PermError(format!("{COUNT_CAP} or more DNS lookups (a loop?)")));
        }
        Ok(())
    }

    fn void(&mut self, l: &Lookup) -> Result<(), SpfResult> {
        if l.void() {
            self.voids += 1;
            if !self.counting() && self.voids > MAX_VOID {
                return Err(SpfResult::PermError(format!("more than {MAX_VOID} void lookups")));
            }
        }
        Ok(())
    }

    fn ask(&mut self, name: &str, t: Type) -> Result<Lookup, SpfResult> {
        match self.r.lookup(name, t) {
            Ok(Lookup::Error(rc)) => Err(SpfResult::TempError(format!("DNS error {rc} for {name}"))),
            Ok(l) => Ok(l),
            Err(crate::dns::DnsError::BadName(_)) => Ok(Lookup::NoName),
            Err(e) => Err(SpfResult::TempError(e.to_string())),
        }
    }

    fn target(&self, spec: Option<&str>, domain: &str) -> Result<String, SpfResult> {
        let Some(spec) = spec else { return Ok(domain.to_owned()) };
        let vars = MacroVars {
            sender: format!("{}@{domain}", self.sender_local),
            domain: domain.to_owned(),
            ip: self.ip,
            helo: self.helo.clone(),
        };
        let mut t = expand(spec, &vars, false).map_err(SpfResult::PermError)?;
        // §7.3: over 253 characters, drop labels from the left.
        while t.len() > 253 {
            match t.split_once('.') {
                Some((_, rest)) => t = rest.to_owned(),
                None => break,
            }
        }
        Ok(t.trim_end_matches('.').to_owned())
    }

    /// `check_host(ip, domain, postmaster@domain)`.
    pub fn check_host(&mut self, domain: &str) -> SpfResult {
        self.depth += 1;
        let r = self.check_host_inner(domain);
        self.depth -= 1;
        r
    }

    fn check_host_inner(&mut self, domain: &str) -> SpfResult {
        if self.depth > MAX_LOOKUPS + 1 {
            return SpfResult::PermError("includes nested too deep".into());
        }
        let txt = match self.record(domain) {
            Ok(Some(t)) => t,
            Ok(None) => return SpfResult::None,
            Err(e) => return e,
        };
        let rec = match parse(&txt) {
            Ok(r) => r,
            Err(e) => return SpfResult::PermError(format!("{domain}: {e}")),
        };
        for (q, m) in &rec.terms {
            let matched = match self.mechanism(domain, m) {
                Ok(b) => b,
                Err(e) => return e,
            };
            if matched && !self.counting() {
                self.matched = Some(format!("{domain}: {}", describe(*q, m)));
                return match q {
                    Qualifier::Pass => SpfResult::Pass,
                    Qualifier::Fail => SpfResult::Fail,
                    Qualifier::SoftFail => SpfResult::SoftFail,
                    Qualifier::Neutral => SpfResult::Neutral,
                };
            }
        }
        if let Some(rd) = &rec.redirect {
            if let Err(e) = self.count(domain, &format!("redirect={rd}")) {
                return e;
            }
            let target = match self.target(Some(rd), domain) {
                Ok(t) => t,
                Err(e) => return e,
            };
            return match self.check_host(&target) {
                SpfResult::None => SpfResult::PermError(format!("redirect target {target} has no SPF record")),
                r => r,
            };
        }
        SpfResult::Neutral
    }

    /// Does mechanism `m` of `domain`'s record match the IP?
    fn mechanism(&mut self, domain: &str, m: &Mechanism) -> Result<bool, SpfResult> {
        if m.queries_dns() {
            self.count(domain, &describe(Qualifier::Pass, m))?;
        }
        match m {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(matches!(self.ip, Some(IpAddr::V4(ip)) if in_net(ip.into(), (*net).into(), *len))),
            Mechanism::Ip6(net, len) => Ok(matches!(self.ip, Some(IpAddr::V6(ip)) if in_net(ip.into(), (*net).into(), *len))),
            Mechanism::Include(spec) => {
                let target = self.target(Some(spec), domain)?;
                match self.check_host(&target) {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError(e) => Err(SpfResult::TempError(e)),
                    SpfResult::PermError(e) => Err(SpfResult::PermError(e)),
                    SpfResult::None => {
                        self.voids += 1;
                        Err(SpfResult::PermError(format!("include:{target} has no SPF record")))
                    }
                }
            }
            Mechanism::A(spec, v4, v6) => {
                let target = self.target(spec.as_deref(), domain)?;
                let l = self.ask(&target, if matches!(self.ip, Some(IpAddr::V6(_))) { Type::Aaaa } else { Type::A })?;
                self.void(&l)?;
                Ok(self.ip.is_some_and(|ip| l.ips().iter().any(|&a| in_net(ip, a, if a.is_ipv4() { *v4 } else { *v6 }))))
            }
            Mechanism::Mx(spec, v4, v6) => {
                let target = self.target(spec.as_deref(), domain)?;
                let l = self.ask(&target, Type::Mx)?;
                self.void(&l)?;
                let hosts: Vec<String> =
                    l.records().iter().filter_map(|d| if let Data::Mx(_, h) = d { Some(h.clone()) } else { None }).collect();
                if hosts.len() > MAX_NAMES {
                    return Err(SpfResult::PermError(format!("mx:{target} has more than {MAX_NAMES} MX names")));
                }
                let Some(ip) = self.ip else { return Ok(false) };
                let t = if ip.is_ipv4() { Type::A } else { Type::Aaaa };
                for h in hosts.iter().filter(|h| !h.is_empty()) {
                    let a = self.ask(h, t)?;
                    if a.ips().iter().any(|&a| in_net(ip, a, if a.is_ipv4() { *v4 } else { *v6 })) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let Some(ip) = self.ip else { return Ok(false) };
                let target = self.target(spec.as_deref(), domain)?.to_ascii_lowercase();
                let rev = crate::dns::reversed(ip, if ip.is_ipv4() { "in-addr.arpa" } else { "ip6.arpa" });
                let l = self.ask(&rev, Type::Ptr)?;
                self.void(&l)?;
                for name in l.names().into_iter().take(MAX_NAMES) {
                    let n = name.to_ascii_lowercase();
                    if (n == target || n.ends_with(&format!(".{target}")))
                        && let Ok(a) = self.ask(&n, if ip.is_ipv4() { Type::A } else { Type::Aaaa })
                        && a.ips().contains(&ip)
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Exists(spec) => {
                if self.counting() {
                    return Ok(false);
                }
                let target = self.target(Some(spec), domain)?;
                let l = self.ask(&target, Type::A)?;
                self.void(&l)?;
                Ok(!l.ips().is_empty())
            }
        }
    }
}

/// A term as written (`-include:x`, `a/24`).
pub fn describe(q: Qualifier, m: &Mechanism) -> String {
    let q = match q {
        Qualifier::Pass => "",
        Qualifier::Fail => "-",
        Qualifier::SoftFail => "~",
        Qualifier::Neutral => "?",
    };
    let cidr = |v4: u8, v6: u8| match (v4, v6) {
        (32, 128) => String::new(),
        (v4, 128) => format!("/{v4}"),
        (v4, v6) => format!("/{v4}//{v6}"),
    };
    let dom = |d: &Option<String>| d.as_ref().map_or_else(String::new, |d| format!(":{d}"));
    let body = match m {
        Mechanism::All => "all".into(),
        Mechanism::Include(d) => format!("include:{d}"),
        Mechanism::A(d, v4, v6) => format!("a{}{}", dom(d), cidr(*v4, *v6)),
        Mechanism::Mx(d, v4, v6) => format!("mx{}{}", dom(d), cidr(*v4, *v6)),
        Mechanism::Ptr(d) => format!("ptr{}", dom(d)),
        Mechanism::Ip4(ip, l) => format!("ip4:{ip}/{l}"),
        Mechanism::Ip6(ip, l) => format!("ip6:{ip}/{l}"),
        Mechanism::Exists(d) => format!("exists:{d}"),
    };
    format!("{q}{body}")
}

/// Is `ip` inside `net/len` (same family)?
pub fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let r = parse("v=spf1 ip4:192.0.2.0/24 a mx:mail.example.org/28//64 include:_spf.example.net ~all").unwrap();
        assert_eq!(r.terms.len(), 5);
        assert_eq!(r.terms[2].1, Mechanism::Mx(Some("mail.example.org".into()), 28, 64));
        assert_eq!(r.terms[4].0, Qualifier::SoftFail);
        assert_eq!(parse("v=spf1 redirect=_spf.example.org").unwrap().redirect.as_deref(), Some("_spf.example.org"));
        assert_eq!(parse("v=spf1 a//64 -all").unwrap().terms[0].1, Mechanism::A(None, 32, 64));
        assert!(parse("v=spf1 exists:%{i}._spf.%{d} -all").is_ok());
        for bad in [
            "v=spf1 ip4:192.0.2.300 -all",
            "v=spf1 ip4:192.0.2.0/33",
            "v=spf1 include -all",
            "v=spf1 foo:bar",
            "v=spf1 redirect=a.org redirect=b.org",
            "v=spf1 include:%{z}.org",
            "v=spf1 a:example",
            "v=spf1 all/24",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(is_spf("v=spf1 -all") && is_spf("V=SPF1") && !is_spf("v=spf10") && !is_spf("spf2.0/pra"));
    }

    #[test]
    fn macros_expand_per_rfc_examples() {
        let v = MacroVars {
            sender: "strong-bad@email.example.com".into(),
            domain: "email.example.com".into(),
            ip: Some("192.0.2.3".parse().unwrap()),
            helo: String::new(),
        };
        let e = |s: &str| expand(s, &v, false).unwrap();
        assert_eq!(e("%{s}"), "strong-bad@email.example.com");
        assert_eq!(e("%{d4}"), "email.example.com");
        assert_eq!(e("%{d2}"), "example.com");
        assert_eq!(e("%{d1}"), "com");
        assert_eq!(e("%{dr}"), "com.example.email");
        assert_eq!(e("%{d2r}"), "example.email");
        assert_eq!(e("%{l}"), "strong-bad");
        assert_eq!(e("%{l-}"), "strong.bad");
        assert_eq!(e("%{lr-}"), "bad.strong");
        assert_eq!(e("%{ir}.%{v}._spf.%{d2}"), "3.2.0.192.in-addr._spf.example.com");
        let v6 = MacroVars { ip: Some("2001:db8::cb01".parse().unwrap()), ..v };
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", &v6, false).unwrap(),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn networks() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(in_net(ip, "192.0.2.0".parse().unwrap(), 24));
        assert!(!in_net(ip, "192.0.3.0".parse().unwrap(), 24));
        assert!(in_net(ip, "0.0.0.0".parse().unwrap(), 0));
        assert!(!in_net(ip, "::".parse().unwrap(), 0));
    }
}
