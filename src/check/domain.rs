//! The DNS checks of one sending domain: `mx`, `spf`, `spf_lookups`,
//! `spf_authorises_ip`, `dkim`, `dmarc`, `mta_sts`, `tls_rpt`. Each reads
//! records through the run's [`Resolver`] and answers one [`Check`]; a
//! check whose questions got no answer is `skipped`, never guessed.
//!
//! Parsing of published records (DKIM keys, DMARC tags) is defensive:
//! any input gives a verdict, never a panic.

use super::resolve::{Lookup, Resolver};
use super::spf::{self, Eval, SpfResult};
use super::{Check, Status, no_answer};
use crate::dns::{Data, Type};
use std::net::IpAddr;

/// Selectors tried when none is known (from the flags, the settings or
/// the signer's log lines): common defaults of signers and hosters.
const COMMON_SELECTORS: &[&str] = &["default", "mail", "dkim", "selector1", "s1"];

/// `mx`: MX records present, each exchange resolving.
pub fn mx(r: &Resolver, domain: &str) -> Check {
    let l = match r.lookup(domain, Type::Mx) {
        Ok(l) => l,
        Err(e) => return no_answer("mx", domain, &e),
    };
    let mut hosts: Vec<(u16, String)> =
        l.records().iter().filter_map(|d| if let Data::Mx(p, h) = d { Some((*p, h.clone())) } else { None }).collect();
    hosts.sort();
    if l == Lookup::NoName {
        return Check::new(
            "mx",
            domain,
            Status::Fail,
            format!("{domain} does not exist in DNS (NXDOMAIN)"),
            format!("Register {domain} or publish its zone, with an MX record pointing at this server."),
        );
    }
    if hosts.len() == 1 && hosts[0].1.is_empty() {
        return Check::new(
            "mx",
            domain,
            Status::Warn,
            format!("{domain} publishes a null MX (\"0 .\"): it receives no mail, so bounces and replies to its senders are lost"),
            format!("If {domain} sends mail, replace the null MX with \"{domain}. IN MX 10 <this server's name>.\""),
        );
    }
    if hosts.is_empty() {
        let fallback = r.addresses(domain).unwrap_or_default();
        return if fallback.is_empty() {
            Check::new(
                "mx",
                domain,
                Status::Fail,
                format!("{domain} has no MX record and no address"),
                format!("Publish \"{domain}. IN MX 10 <this server's name>.\""),
            )
        } else {
            Check::new(
                "mx",
                domain,
                Status::Warn,
                format!("{domain} has no MX record; mail falls back to its A/AAAA address ({})", join(&fallback)),
                format!("Publish \"{domain}. IN MX 10 <this server's name>.\""),
            )
        };
    }
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for (p, h) in &hosts {
        match r.addresses(h) {
            Ok(ips) if !ips.is_empty() => good.push(format!("{p} {h} ({})", join(&ips))),
            Ok(_) => bad.push(h.clone()),
            Err(e) => return no_answer("mx", domain, &e),
        }
    }
    if good.is_empty() {
        Check::new(
            "mx",
            domain,
            Status::Fail,
            format!("MX hosts without an address: {}", bad.join(", ")),
            format!("Give {} an A (and AAAA) record, or point the MX at a host that has one.", bad.join(", ")),
        )
    } else if bad.is_empty() {
        Check::new("mx", domain, Status::Pass, format!("MX: {}", good.join("; ")), "")
    } else {
        Check::new(
            "mx",
            domain,
            Status::Warn,
            format!("MX: {}; without an address: {}", good.join("; "), bad.join(", ")),
            format!("Give {} an A (and AAAA) record, or remove it from the MX records.", bad.join(", ")),
        )
    }
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// `spf`: one record, valid syntax, a sensible `all`.
pub fn spf(r: &Resolver, domain: &str) -> Check {
    let e = Eval::new(r, None, "");
    let txt = match e.record(domain) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Check::new(
                "spf",
                domain,
                Status::Fail,
                format!("{domain} publishes no SPF record (no TXT record starting with v=spf1)"),
                format!("Publish \"{domain}. IN TXT \\\"v=spf1 mx -all\\\"\" (or list this server's IP with ip4:/ip6:)."),
            );
        }
        Err(SpfResult::TempError(m)) => return no_answer("spf", domain, &m),
        Err(SpfResult::PermError(m)) => {
            return Check::new(
                "spf",
                domain,
                Status::Fail,
                m,
                "Merge the SPF records into one TXT record: receivers treat several as an error.",
            );
        }
        Err(other) => return Check::new("spf", domain, Status::Fail, other.word().to_owned(), ""),
    };
    let rec = match spf::parse(&txt) {
        Ok(rec) => rec,
        Err(m) => {
            return Check::new(
                "spf",
                domain,
                Status::Fail,
                format!("SPF record \"{txt}\" has a syntax error: {m}; receivers treat it as a permanent error (permerror)"),
                "Correct the record (RFC 7208 syntax: v=spf1, then mechanisms such as ip4:, ip6:, a, mx, include:, then -all or ~all).",
            );
        }
    };
    let all = rec.terms.iter().find(|(_, m)| *m == spf::Mechanism::All).map(|(q, _)| *q);
    let ptr = rec.terms.iter().any(|(_, m)| matches!(m, spf::Mechanism::Ptr(_)));
    match all {
        Some(spf::Qualifier::Pass) => Check::new(
            "spf",
            domain,
            Status::Fail,
            format!("\"{txt}\" ends in +all: every server on the internet may send as {domain}"),
            "Replace +all with -all (or ~all while testing).",
        ),
        Some(spf::Qualifier::Neutral) => Check::new(
            "spf",
            domain,
            Status::Warn,
            format!("\"{txt}\" ends in ?all: it says nothing about servers not listed"),
            "Replace ?all with ~all or -all.",
        ),
        None if rec.redirect.is_none() => Check::new(
            "spf",
            domain,
            Status::Warn,
            format!("\"{txt}\" has no all mechanism: servers not listed get a neutral result"),
            "End the record with -all (or ~all).",
        ),
        _ if ptr => Check::new(
            "spf",
            domain,
            Status::Warn,
            format!("\"{txt}\" uses the ptr mechanism, which RFC 7208 says not to use (slow, many receivers skip it)"),
            "Replace ptr with ip4:/ip6: or a/mx mechanisms.",
        ),
        _ => Check::new("spf", domain, Status::Pass, format!("\"{txt}\""), ""),
    }
}

/// `spf_lookups`: the DNS-querying terms of the whole include tree (the
/// worst case, an IP that matches nothing) against the limits.
pub fn spf_lookups(r: &Resolver, domain: &str) -> Check {
    let mut e = Eval::new(r, None, "");
    // A broken record of the domain itself is the spf check's finding.
    if let Ok(Some(txt)) | Err(SpfResult::PermError(txt)) = e.record(domain).map(|t| t.filter(|t| spf::parse(t).is_err())) {
        return Check::new(
            "spf_lookups",
            domain,
            Status::Skipped,
            format!("the SPF record of {domain} does not parse ({txt}): nothing to count"),
            "See the spf check.",
        );
    }
    let res = e.check_host(domain);
    let n = e.lookups;
    let trail = if e.trail.is_empty() { "none".into() } else { e.trail.join(", ") };
    match res {
        SpfResult::TempError(m) => no_answer("spf_lookups", domain, &m),
        SpfResult::None => Check::new("spf_lookups", domain, Status::Skipped, format!("{domain} has no SPF record"), "See the spf check."),
        SpfResult::PermError(m) if n < spf::MAX_LOOKUPS => Check::new(
            "spf_lookups",
            domain,
            Status::Fail,
            format!("the SPF evaluation fails: {m}"),
            "Correct the record or the include it names.",
        ),
        _ if n > spf::MAX_LOOKUPS => Check::new(
            "spf_lookups",
            domain,
            Status::Fail,
            format!("{n} DNS lookups (the limit is {}): {trail}; receivers answer permerror, as if there were no SPF", spf::MAX_LOOKUPS),
            "Cut lookups: replace includes and a/mx with the ip4:/ip6: ranges they stand for, or drop includes of services you no longer use.",
        ),
        _ if e.voids > spf::MAX_VOID => Check::new(
            "spf_lookups",
            domain,
            Status::Fail,
            format!("{} lookups find no record (the limit is {} such void lookups): {trail}", e.voids, spf::MAX_VOID),
            "Remove the a:/mx:/include: terms whose names do not exist.",
        ),
        _ if n >= spf::MAX_LOOKUPS - 1 => Check::new(
            "spf_lookups",
            domain,
            Status::Warn,
            format!("{n} DNS lookups, close to the limit of {}: {trail}", spf::MAX_LOOKUPS),
            "Replace an include or a/mx term with ip4:/ip6: ranges before a provider's include grows.",
        ),
        _ => Check::new(
            "spf_lookups",
            domain,
            Status::Pass,
            format!("{n} DNS lookups (limit {}), {} void: {trail}", spf::MAX_LOOKUPS, e.voids),
            "",
        ),
    }
}

/// `spf_authorises_ip`: `check_host()` for the server's public IP.
pub fn spf_authorises_ip(r: &Resolver, domain: &str, ip: Option<IpAddr>, helo: &str) -> Check {
    let Some(ip) = ip else {
        return Check::new(
            "spf_authorises_ip",
            domain,
            Status::Skipped,
            "the server's public IP is not known",
            "Set the public IP in Settings, or pass --public-ip.",
        );
    };
    let mut e = Eval::new(r, Some(ip), helo);
    let res = e.check_host(domain);
    let how = e.matched.clone().map_or_else(String::new, |m| format!(" (matched {m})"));
    match res {
        SpfResult::Pass => Check::new("spf_authorises_ip", domain, Status::Pass, format!("SPF of {domain} gives pass for {ip}{how}"), ""),
        SpfResult::TempError(m) => no_answer("spf_authorises_ip", domain, &m),
        SpfResult::PermError(m) => Check::new(
            "spf_authorises_ip",
            domain,
            Status::Fail,
            format!("SPF of {domain} gives permerror for {ip}: {m}"),
            "Fix the errors the spf and spf_lookups checks show.",
        ),
        SpfResult::None => Check::new(
            "spf_authorises_ip",
            domain,
            Status::Fail,
            format!("{domain} has no SPF record, so nothing authorises {ip}"),
            format!("Publish \"v=spf1 ip{}:{ip} -all\" (or mx, if the MX is this server).", if ip.is_ipv4() { 4 } else { 6 }),
        ),
        other => Check::new(
            "spf_authorises_ip",
            domain,
            Status::Fail,
            format!("SPF of {domain} gives {} for this server's IP {ip}{how}: receivers may reject or junk its mail", other.word()),
            format!("Add ip{}:{ip} to the SPF record of {domain}, before its all mechanism.", if ip.is_ipv4() { 4 } else { 6 }),
        ),
    }
}

/// What a DKIM key record says.
#[derive(Debug, PartialEq, Eq)]
pub enum DkimKey {
    /// Key type and size in bits (Ed25519: 256), testing flag, hashes.
    Key { kind: &'static str, bits: usize, testing: bool, sha1_only: bool },
    /// `p=` empty: the key was withdrawn.
    Revoked,
    /// Not a usable key record, and why.
    Bad(String),
}

/// Parses a DKIM key record (RFC 6376 §3.6.1).
pub fn dkim_key(txt: &str) -> DkimKey {
    let mut tags: Vec<(&str, String)> = Vec::new();
    for (i, part) in txt.split(';').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let Some((k, v)) = part.split_once('=') else { return DkimKey::Bad(format!("'{part}' is not tag=value")) };
        let k = k.trim();
        let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        if k == "v" && (i != 0 || v != "DKIM1") {
            return DkimKey::Bad("v= must come first and be DKIM1".into());
        }
        if tags.iter().any(|(t, _)| *t == k) {
            return DkimKey::Bad(format!("tag {k}= appears twice"));
        }
        tags.push((k, v));
    }
    let get = |k: &str| tags.iter().find(|(t, _)| *t == k).map(|(_, v)| v.as_str());
    let Some(p) = get("p") else { return DkimKey::Bad("no p= tag (the public key)".into()) };
    if p.is_empty() {
        return DkimKey::Revoked;
    }
    let testing = get("t").is_some_and(|t| t.split(':').any(|f| f == "y"));
    let sha1_only = get("h").is_some_and(|h| h.split(':').all(|a| a == "sha1"));
    let Ok(der) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, p) else {
        return DkimKey::Bad("p= is not valid base64".into());
    };
    match get("k").unwrap_or("rsa") {
        "rsa" => match rsa_bits(&der) {
            Some(bits) => DkimKey::Key { kind: "rsa", bits, testing, sha1_only },
            None => DkimKey::Bad(format!("p= decodes to {} bytes that are not an RSA public key", der.len())),
        },
        "ed25519" if der.len() == 32 => DkimKey::Key { kind: "ed25519", bits: 256, testing, sha1_only },
        "ed25519" => DkimKey::Bad(format!("an Ed25519 key is 32 bytes, p= has {}", der.len())),
        k => DkimKey::Bad(format!("unknown key type k={k}")),
    }
}

/// One DER element: tag, contents, the bytes after it.
fn tlv(p: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, p) = p.split_first()?;
    let (&l, mut p) = p.split_first()?;
    let len = if l < 0x80 {
        usize::from(l)
    } else {
        let n = usize::from(l & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let (b, rest) = p.split_at_checked(n)?;
        p = rest;
        b.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x))
    };
    let (v, rest) = p.split_at_checked(len)?;
    Some((tag, v, rest))
}

/// The modulus size of an RSA public key, as `SubjectPublicKeyInfo` (what
/// DKIM publishes) or bare PKCS#1 `RSAPublicKey`.
fn rsa_bits(der: &[u8]) -> Option<usize> {
    const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let pkcs1 = |p: &[u8]| -> Option<usize> {
        let (0x30, body, _) = tlv(p)? else { return None };
        let (0x02, n, rest) = tlv(body)? else { return None };
        let (0x02, e, _) = tlv(rest)? else { return None };
        let n = &n[n.iter().position(|&b| b != 0)?..];
        if e.iter().all(|&b| b == 0) {
            return None;
        }
        Some(n.len() * 8 - usize::try_from(n[0].leading_zeros()).ok()?)
    };
    let (0x30, body, _) = tlv(der)? else { return None };
    match tlv(body)? {
        (0x30, alg, after) => {
            let (0x06, oid, _) = tlv(alg)? else { return None };
            if oid != RSA_OID {
                return None;
            }
            let (0x03, bits, _) = tlv(after)? else { return None };
            pkcs1(bits.get(1..)?)
        }
        _ => pkcs1(der),
    }
}

/// `dkim`: the key of each selector. `selectors` empty: the common ones.
pub fn dkim(r: &Resolver, domain: &str, selectors: &[String]) -> Vec<Check> {
    let guessed = selectors.is_empty();
    let list: Vec<String> = if guessed { COMMON_SELECTORS.iter().map(|s| (*s).to_owned()).collect() } else { selectors.to_vec() };
    let mut out = Vec::new();
    for sel in &list {
        let name = format!("{sel}._domainkey.{domain}");
        let l = match r.lookup(&name, Type::Txt) {
            Ok(l) => l,
            Err(e) => {
                out.push(no_answer("dkim", &name, &e));
                continue;
            }
        };
        let txts = l.txts();
        let Some(txt) = txts.iter().find(|t| t.contains("p=")).or(txts.first()) else {
            if !guessed {
                out.push(Check::new(
                    "dkim",
                    &name,
                    Status::Fail,
                    format!("no DKIM key at {name}"),
                    format!("Publish the signer's public key as TXT at {name} (opendkim-genkey or rspamadm dkim_keygen print the record), or correct the selector."),
                ));
            }
            continue;
        };
        out.push(match dkim_key(txt) {
            DkimKey::Key { kind, bits, testing, sha1_only } => {
                let what = format!("{kind} key of {bits} bits at {name}");
                if kind == "rsa" && bits < 1024 {
                    Check::new(
                        "dkim",
                        &name,
                        Status::Fail,
                        format!("{what}: receivers ignore RSA keys under 1024 bits (RFC 8301)"),
                        "Generate a 2048-bit key, publish it under a new selector and switch the signer to it.",
                    )
                } else if kind == "rsa" && bits < 2048 {
                    Check::new(
                        "dkim",
                        &name,
                        Status::Warn,
                        format!("{what}: 2048 bits is the recommended size"),
                        "Generate a 2048-bit key, publish it under a new selector and switch the signer to it.",
                    )
                } else if sha1_only {
                    Check::new(
                        "dkim",
                        &name,
                        Status::Fail,
                        format!("{what} allows only SHA-1 (h=sha1), which receivers no longer accept (RFC 8301)"),
                        "Remove h=sha1 from the record (sha256 is the default).",
                    )
                } else if testing {
                    Check::new(
                        "dkim",
                        &name,
                        Status::Warn,
                        format!("{what} is in testing mode (t=y): receivers treat signatures as unsigned"),
                        "Remove t=y from the record once signing works.",
                    )
                } else {
                    Check::new("dkim", &name, Status::Pass, what, "")
                }
            }
            DkimKey::Revoked => Check::new(
                "dkim",
                &name,
                Status::Fail,
                format!("the key at {name} is revoked (empty p=)"),
                "Sign with a selector whose key is published, or publish a new key at this one.",
            ),
            DkimKey::Bad(why) => Check::new(
                "dkim",
                &name,
                Status::Fail,
                format!("DKIM record at {name} is malformed: {why}"),
                format!("Publish the record exactly as the signer printed it: \"v=DKIM1; k=rsa; p=<base64 key>\" at {name}."),
            ),
        });
    }
    if out.is_empty() {
        out.push(Check::new(
            "dkim",
            domain,
            Status::Warn,
            format!("no DKIM key found under the common selectors ({}) and no selector is configured", COMMON_SELECTORS.join(", ")),
            "Name your signer's selector with --dkim-selector or in Settings → Health; if mail is not signed, set up opendkim or rspamd signing.",
        ));
    }
    out
}

/// A parsed DMARC record: the policy, its problems (errors fail, notes warn).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dmarc {
    pub policy: Option<String>,
    pub rua: Vec<String>,
    pub pct: u8,
    pub errors: Vec<String>,
}

/// Parses a DMARC record (RFC 7489 §6.3): syntax errors are collected.
pub fn dmarc_record(txt: &str) -> Dmarc {
    let mut d = Dmarc { pct: 100, ..Dmarc::default() };
    let mut seen: Vec<String> = Vec::new();
    for (i, part) in txt.split(';').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let Some((k, v)) = part.split_once('=') else {
            d.errors.push(format!("'{part}' is not tag=value"));
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if seen.contains(&k) {
            d.errors.push(format!("tag {k}= appears twice"));
        }
        seen.push(k.clone());
        let one_of = |d: &mut Dmarc, ok: &[&str]| {
            if !ok.contains(&v) {
                d.errors.push(format!("{k}={v} is not one of {}", ok.join(", ")));
            }
        };
        match k.as_str() {
            "v" if i == 0 && v == "DMARC1" => {}
            "v" => d.errors.push("v=DMARC1 must be the first tag".into()),
            _ if i == 0 => d.errors.push("the record must start with v=DMARC1".into()),
            "p" => {
                one_of(&mut d, &["none", "quarantine", "reject"]);
                d.policy = Some(v.to_owned());
            }
            "sp" => one_of(&mut d, &["none", "quarantine", "reject"]),
            "adkim" | "aspf" => one_of(&mut d, &["r", "s"]),
            "pct" => match v.parse::<u8>() {
                Ok(p) if p <= 100 => d.pct = p,
                _ => d.errors.push(format!("pct={v} is not a number from 0 to 100")),
            },
            "ri" if v.parse::<u32>().is_err() => d.errors.push(format!("ri={v} is not a number of seconds")),
            "fo" if !v.split(':').all(|f| ["0", "1", "d", "s"].contains(&f.trim())) => {
                d.errors.push(format!("fo={v} is not a list of 0, 1, d, s"));
            }
            "rf" if !v.split(':').all(|f| f.trim() == "afrf") => d.errors.push(format!("rf={v} is not afrf")),
            "rua" | "ruf" => {
                for uri in v.split(',').map(str::trim) {
                    let addr = uri.split('!').next().unwrap_or("");
                    match addr.strip_prefix("mailto:") {
                        Some(a) if a.split_once('@').is_some_and(|(l, dom)| !l.is_empty() && crate::dns::valid_name(dom)) => {
                            if k == "rua" {
                                d.rua.push(a.to_owned());
                            }
                        }
                        _ => d.errors.push(format!("{k}: '{uri}' is not a mailto: address")),
                    }
                }
            }
            // RFC 7489 §6.3: unknown tags are ignored.
            _ => {}
        }
    }
    if d.policy.is_none() && !d.errors.iter().any(|e| e.contains("v=DMARC1")) {
        d.errors.push("p= (the policy) is missing".into());
    }
    d
}

/// `dmarc`: one valid record at `_dmarc.<domain>`, a policy that acts,
/// reports asked for and allowed by the report domain.
pub fn dmarc(r: &Resolver, domain: &str) -> Check {
    let name = format!("_dmarc.{domain}");
    let l = match r.lookup(&name, Type::Txt) {
        Ok(l) => l,
        Err(e) => return no_answer("dmarc", &name, &e),
    };
    let recs: Vec<&str> = l.txts().into_iter().filter(|t| t.trim_start().to_ascii_lowercase().starts_with("v=dmarc1")).collect();
    let add = format!("Publish \"{name}. IN TXT \\\"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{domain}\\\"\".");
    let txt = match recs.as_slice() {
        [] => return Check::new("dmarc", &name, Status::Fail, format!("no DMARC record at {name}"), add),
        [one] => *one,
        many => {
            return Check::new(
                "dmarc",
                &name,
                Status::Fail,
                format!("{} DMARC records at {name}: receivers then apply none", many.len()),
                "Keep one DMARC record.",
            );
        }
    };
    let d = dmarc_record(txt);
    if !d.errors.is_empty() {
        return Check::new("dmarc", &name, Status::Fail, format!("\"{txt}\": {}", d.errors.join("; ")), add);
    }
    // RFC 7489 §7.1: another domain receives reports only if it says so.
    let mut unauthorised = Vec::new();
    for a in &d.rua {
        let rdom = a.rsplit_once('@').map_or("", |(_, x)| x).to_ascii_lowercase();
        if rdom != domain && !rdom.ends_with(&format!(".{domain}")) {
            let auth = format!("{domain}._report._dmarc.{rdom}");
            if let Ok(l) = r.lookup(&auth, Type::Txt)
                && !l.txts().iter().any(|t| t.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
            {
                unauthorised.push(auth);
            }
        }
    }
    let policy = d.policy.as_deref().unwrap_or("none");
    if policy == "none" {
        Check::new(
            "dmarc",
            &name,
            Status::Warn,
            format!("\"{txt}\": p=none only monitors; forged mail from {domain} is still delivered"),
            format!("Once reports show your own mail passes, set p=quarantine (then p=reject) in {name}."),
        )
    } else if d.rua.is_empty() {
        Check::new(
            "dmarc",
            &name,
            Status::Warn,
            format!("\"{txt}\": no rua=, so no aggregate reports tell you who sends as {domain}"),
            format!("Add rua=mailto:dmarc-reports@{domain} to {name}."),
        )
    } else if !unauthorised.is_empty() {
        Check::new(
            "dmarc",
            &name,
            Status::Warn,
            format!(
                "\"{txt}\": the report address's domain does not accept reports for {domain} (no record at {})",
                unauthorised.join(", ")
            ),
            format!("Publish TXT \"v=DMARC1\" at {}, or send reports to an address at {domain}.", unauthorised.join(", ")),
        )
    } else if d.pct < 100 {
        Check::new(
            "dmarc",
            &name,
            Status::Warn,
            format!("\"{txt}\": the policy applies to {}% of failing mail only", d.pct),
            format!("Remove pct= (or set pct=100) in {name}."),
        )
    } else {
        Check::new("dmarc", &name, Status::Pass, format!("\"{txt}\""), "")
    }
}

/// Tag-value records (`v=STSv1; id=…`): the tags, or `None` if malformed.
fn tags(txt: &str) -> Option<Vec<(String, String)>> {
    txt.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect()
}

/// The TXT records at `name` starting with `version`, or the check to
/// answer: skipped while the opt-in is off, or without a DNS answer.
fn opt_in_records(r: &Resolver, id: &'static str, name: &str, what: &str, version: &str, enabled: bool) -> Result<Vec<String>, Check> {
    if !enabled {
        return Err(Check::new(
            id,
            name,
            Status::Skipped,
            format!("{what} is not checked (opt-in)"),
            "Turn on MTA-STS checks in Settings → Health, or pass --mta-sts.",
        ));
    }
    let l = r.lookup(name, Type::Txt).map_err(|e| no_answer(id, name, &e))?;
    Ok(l.txts().into_iter().filter(|t| t.trim_start().starts_with(version)).map(str::to_owned).collect())
}

/// `mta_sts` (opt-in): the `_mta-sts` TXT record and the policy host.
/// The policy file itself (HTTPS) is not fetched.
pub fn mta_sts(r: &Resolver, domain: &str, enabled: bool) -> Check {
    let name = format!("_mta-sts.{domain}");
    let recs = match opt_in_records(r, "mta_sts", &name, "MTA-STS", "v=STSv1", enabled) {
        Ok(v) => v,
        Err(c) => return c,
    };
    let fix = format!(
        "Publish \"{name}. IN TXT \\\"v=STSv1; id=20240101T000000\\\"\" and serve the policy at https://mta-sts.{domain}/.well-known/mta-sts.txt."
    );
    let [txt] = recs.as_slice() else {
        return Check::new("mta_sts", &name, Status::Fail, format!("{} MTA-STS records at {name} (one is needed)", recs.len()), fix);
    };
    let id = tags(txt).and_then(|t| t.into_iter().find(|(k, _)| k == "id").map(|(_, v)| v));
    if !id.as_deref().is_some_and(|i| (1..=32).contains(&i.len()) && i.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return Check::new("mta_sts", &name, Status::Fail, format!("\"{txt}\": id= must be 1 to 32 letters or digits"), fix);
    }
    let host = format!("mta-sts.{domain}");
    match r.addresses(&host) {
        Ok(ips) if !ips.is_empty() => Check::new(
            "mta_sts",
            &name,
            Status::Pass,
            format!("\"{txt}\"; {host} resolves ({}); the policy file was not fetched", join(&ips)),
            "",
        ),
        Ok(_) => Check::new(
            "mta_sts",
            &name,
            Status::Fail,
            format!("\"{txt}\", but {host} has no address, so senders cannot fetch the policy"),
            format!("Give {host} an address and serve https://{host}/.well-known/mta-sts.txt."),
        ),
        Err(e) => no_answer("mta_sts", &name, &e),
    }
}

/// `tls_rpt` (opt-in with MTA-STS): the `_smtp._tls` TXT record.
pub fn tls_rpt(r: &Resolver, domain: &str, enabled: bool) -> Check {
    let name = format!("_smtp._tls.{domain}");
    let recs = match opt_in_records(r, "tls_rpt", &name, "TLS-RPT", "v=TLSRPTv1", enabled) {
        Ok(v) => v,
        Err(c) => return c,
    };
    let fix = format!("Publish \"{name}. IN TXT \\\"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\\\"\".");
    let [txt] = recs.as_slice() else {
        return Check::new("tls_rpt", &name, Status::Fail, format!("{} TLS-RPT records at {name} (one is needed)", recs.len()), fix);
    };
    let rua = tags(txt).and_then(|t| t.into_iter().find(|(k, _)| k == "rua").map(|(_, v)| v));
    let ok = rua.as_deref().is_some_and(|r| r.split(',').all(|u| u.trim().starts_with("mailto:") || u.trim().starts_with("https://")));
    if ok {
        Check::new("tls_rpt", &name, Status::Pass, format!("\"{txt}\""), "")
    } else {
        Check::new("tls_rpt", &name, Status::Fail, format!("\"{txt}\": rua= must list mailto: or https: addresses"), fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dkim_records() {
        // A 1024-bit RSA key in SubjectPublicKeyInfo form (openssl rsa -pubout -outform DER).
        let k1024 = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCqEZKrurchp2ruY0PInfMJt9jUI6YbWHkhCEeg+Jh34reRpf6E9Co5k+rzIH77ZV/aQYbL202IvYosy3vq2rovflsdUTd1Oy+i3RrjLOuPu1rBu52wxirlBEGTwQEAjpxG4aS71Xcj74qyikbBXVmgw0mJf2hE1aK5STysnFgmSwIDAQAB";
        assert_eq!(
            dkim_key(&format!("v=DKIM1; k=rsa; p={k1024}")),
            DkimKey::Key { kind: "rsa", bits: 1024, testing: false, sha1_only: false }
        );
        assert_eq!(
            dkim_key(&format!("v=DKIM1; t=y; p={k1024}")),
            DkimKey::Key { kind: "rsa", bits: 1024, testing: true, sha1_only: false }
        );
        assert_eq!(dkim_key("v=DKIM1; k=rsa; p="), DkimKey::Revoked);
        assert!(matches!(dkim_key("v=DKIM1; k=rsa; p=!!notbase64"), DkimKey::Bad(_)));
        assert!(matches!(dkim_key("v=DKIM1; k=rsa; p=aGVsbG8gd29ybGQ="), DkimKey::Bad(_)), "base64, not a key");
        assert!(matches!(dkim_key("k=rsa; v=DKIM1; p=x"), DkimKey::Bad(_)), "v= not first");
        assert!(matches!(dkim_key("v=DKIM1; k=dsa; p=aGVsbG8="), DkimKey::Bad(_)));
        assert!(matches!(dkim_key("v=DKIM1"), DkimKey::Bad(_)));
        let ed = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        assert_eq!(
            dkim_key(&format!("v=DKIM1; k=ed25519; p={ed}")),
            DkimKey::Key { kind: "ed25519", bits: 256, testing: false, sha1_only: false }
        );
    }

    #[test]
    fn der_never_panics() {
        let k = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCqEZKrurchp2ruY0PInfMJt9jUI6YbWHkhCEeg+Jh34reRpf6E9Co5k+rzIH77ZV/aQYbL202IvYosy3vq2rovflsdUTd1Oy+i3RrjLOuPu1rBu52wxirlBEGTwQEAjpxG4aS71Xcj74qyikbBXVmgw0mJf2hE1aK5STysnFgmSwIDAQAB").unwrap();
        for cut in 0..k.len() {
            assert_eq!(rsa_bits(&k[..cut]), None, "cut at {cut}");
        }
        assert_eq!(rsa_bits(&k), Some(1024));
    }

    #[test]
    fn dmarc_records() {
        let ok = dmarc_record("v=DMARC1; p=reject; rua=mailto:d@example.org; pct=100; adkim=s; fo=1:d");
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
        assert_eq!(ok.policy.as_deref(), Some("reject"));
        assert_eq!(ok.rua, vec!["d@example.org"]);
        for bad in [
            "v=DMARC1; p=rejectt",
            "v=DMARC1; rua=mailto:d@example.org",
            "p=reject; v=DMARC1",
            "v=DMARC1; p=reject; pct=150",
            "v=DMARC1; p=reject; rua=d@example.org",
            "v=DMARC1; p=reject; p=none",
            "v=DMARC1; p=reject; adkim=x",
            "v=DMARC1 p=reject",
        ] {
            assert!(!dmarc_record(bad).errors.is_empty(), "{bad}");
        }
    }
}
