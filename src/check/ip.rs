//! The checks of the server itself in DNS: `ptr` (reverse DNS of the
//! public IP), `fcrdns` (the PTR name resolves back to the IP and is the
//! HELO name), `helo` (the HELO name is a resolvable FQDN) and `dnsbl`
//! (the IP on each DNSBL, through [`crate::dns::dnsbl`] like the RBL
//! insight).

use super::resolve::{Lookup, Resolver};
use super::{Check, Status, no_answer};
use crate::dns::{Listing, Type};
use std::net::IpAddr;

fn no_ip(id: &'static str) -> Check {
    Check::new(id, "", Status::Skipped, "the server's public IP is not known", "Set the public IP in Settings, or pass --public-ip.")
}

fn reverse_name(ip: IpAddr) -> String {
    crate::dns::reversed(ip, if ip.is_ipv4() { "in-addr.arpa" } else { "ip6.arpa" })
}

/// The PTR names of `ip`, or the check that says why there are none.
fn ptr_names(r: &Resolver, id: &'static str, ip: IpAddr, helo: Option<&str>) -> Result<Vec<String>, Check> {
    let rev = reverse_name(ip);
    let fix = format!(
        "Ask whoever hosts {ip} (your provider's panel or support) to set its reverse DNS (PTR) to {}.",
        helo.unwrap_or("this server's HELO name (Postfix myhostname)")
    );
    match r.lookup(&rev, Type::Ptr) {
        Ok(l @ Lookup::Found(_)) => Ok(l.names().into_iter().map(str::to_ascii_lowercase).collect()),
        Ok(Lookup::Empty | Lookup::NoName) => {
            Err(Check::new(id, &ip.to_string(), Status::Fail, format!("{ip} has no PTR record ({rev})"), fix))
        }
        Ok(Lookup::Error(rc)) => {
            Err(Check::new(id, &ip.to_string(), Status::Fail, format!("the reverse zone of {ip} answers with DNS error {rc}"), fix))
        }
        Err(e) => Err(no_answer(id, &ip.to_string(), &e)),
    }
}

/// `ptr`: the public IP has exactly one PTR record.
pub fn ptr(r: &Resolver, ip: Option<IpAddr>, helo: Option<&str>) -> Check {
    let Some(ip) = ip else { return no_ip("ptr") };
    match ptr_names(r, "ptr", ip, helo) {
        Err(c) => c,
        Ok(n) if n.len() > 1 => Check::new(
            "ptr",
            &ip.to_string(),
            Status::Warn,
            format!("{ip} has {} PTR records ({}); receivers may pick any", n.len(), n.join(", ")),
            "Keep one PTR record: the HELO name.",
        ),
        Ok(n) => Check::new("ptr", &ip.to_string(), Status::Pass, format!("{ip} → {}", n.join(", ")), ""),
    }
}

/// `fcrdns`: a PTR name resolves back to the IP, and it is the HELO name.
pub fn fcrdns(r: &Resolver, ip: Option<IpAddr>, helo: Option<&str>) -> Check {
    let Some(ip) = ip else { return no_ip("fcrdns") };
    let t = ip.to_string();
    let names = match ptr_names(r, "fcrdns", ip, helo) {
        Ok(n) => n,
        Err(c) => return c,
    };
    let mut confirmed = Vec::new();
    let mut seen = Vec::new();
    for n in &names {
        match r.addresses(n) {
            Ok(ips) if ips.contains(&ip) => confirmed.push(n.clone()),
            Ok(ips) if ips.is_empty() => seen.push(format!("{n} has no address")),
            Ok(ips) => seen.push(format!("{n} resolves to {}", ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))),
            Err(e) => return no_answer("fcrdns", &t, &e),
        }
    }
    let helo_l = helo.map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    if confirmed.is_empty() {
        let name = names.first().cloned().unwrap_or_default();
        return Check::new(
            "fcrdns",
            &t,
            Status::Fail,
            format!("{ip} → {} but {}: the reverse DNS is not forward-confirmed", names.join(", "), seen.join("; ")),
            format!(
                "Publish \"{name}. IN {} {ip}\", or set the PTR of {ip} to a name that resolves to it.",
                if ip.is_ipv4() { "A" } else { "AAAA" }
            ),
        );
    }
    match helo_l {
        Some(h) if confirmed.contains(&h) => {
            Check::new("fcrdns", &t, Status::Pass, format!("{ip} → {h} → {ip}, and {h} is the HELO name"), "")
        }
        Some(h) => Check::new(
            "fcrdns",
            &t,
            Status::Warn,
            format!("{ip} → {} → {ip}, but the HELO name is {h}", confirmed.join(", ")),
            format!(
                "Make them one name: set myhostname = {} in main.cf (postconf -e; postfix reload), or the PTR of {ip} to {h}.",
                confirmed[0]
            ),
        ),
        None => {
            Check::new("fcrdns", &t, Status::Pass, format!("{ip} → {} → {ip} (HELO name unknown, not compared)", confirmed.join(", ")), "")
        }
    }
}

/// `helo`: the HELO name is a fully qualified name that resolves, to the
/// public IP when that is known.
pub fn helo(r: &Resolver, helo: Option<&str>, ip: Option<IpAddr>) -> Check {
    let Some(h) = helo else {
        return Check::new(
            "helo",
            "",
            Status::Skipped,
            "the HELO name is not known (no postconf here)",
            "Pass --helo, or run the checks where Postfix is installed.",
        );
    };
    let h = h.trim_end_matches('.');
    if h.parse::<IpAddr>().is_ok() || !h.contains('.') || !crate::dns::valid_name(h) {
        return Check::new(
            "helo",
            h,
            Status::Fail,
            format!("HELO name '{h}' is not a fully qualified domain name; many receivers reject it"),
            "Set myhostname to the server's full name, e.g. mail.example.org (postconf -e myhostname=…; postfix reload).",
        );
    }
    match r.addresses(h) {
        Err(e) => no_answer("helo", h, &e),
        Ok(ips) if ips.is_empty() => Check::new(
            "helo",
            h,
            Status::Fail,
            format!("HELO name {h} does not resolve"),
            format!("Publish an A (and AAAA) record for {h} with this server's address."),
        ),
        Ok(ips) if ip.is_none_or(|ip| ips.contains(&ip)) => Check::new(
            "helo",
            h,
            Status::Pass,
            format!("{h} resolves to {}", ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            "",
        ),
        Ok(ips) => Check::new(
            "helo",
            h,
            Status::Warn,
            format!(
                "{h} resolves to {}, not to this server's IP {}",
                ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                ip.map(|i| i.to_string()).unwrap_or_default()
            ),
            format!("Point {h} at {}, or set myhostname to the name that does.", ip.map(|i| i.to_string()).unwrap_or_default()),
        ),
    }
}

/// `dnsbl`: one check per zone. Listed fails; a refusal (127.255.255.x)
/// warns, since it says nothing about a listing.
pub fn dnsbl(
    servers: &[std::net::SocketAddr],
    timeout: std::time::Duration,
    ip: Option<IpAddr>,
    zones: &[String],
    any_answer: &mut bool,
) -> Vec<Check> {
    let Some(ip) = ip else { return vec![no_ip("dnsbl")] };
    if zones.is_empty() {
        return vec![Check::new(
            "dnsbl",
            "",
            Status::Skipped,
            "no DNSBL zones configured",
            "Add zones in Settings → Insights (DNSBLs) or pass --dnsbl.",
        )];
    }
    let mut out = Vec::new();
    for zone in zones {
        let mut res = Err(crate::dns::DnsError::NoServer);
        for &s in servers {
            res = crate::dns::dnsbl(s, ip, zone, timeout);
            if res.is_ok() {
                break;
            }
        }
        let lookup = crate::dns::reversed(ip, zone);
        out.push(match res {
            Ok(Listing::NotListed) => {
                *any_answer = true;
                Check::new("dnsbl", zone, Status::Pass, format!("{ip} is not listed ({lookup} does not exist)"), "")
            }
            Ok(Listing::Listed { codes, reason }) => {
                *any_answer = true;
                let codes = codes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                Check::new(
                    "dnsbl",
                    zone,
                    Status::Fail,
                    format!("{ip} is listed on {zone} ({lookup} → {codes}){}", reason.map(|r| format!(": {r}")).unwrap_or_default()),
                    format!("Find and stop the cause (a compromised account, an open relay, a script sending mail), then request removal through {zone}'s lookup page."),
                )
            }
            Ok(Listing::Refused(code)) => {
                *any_answer = true;
                Check::new(
                    "dnsbl",
                    zone,
                    Status::Warn,
                    format!("{zone} refused the query ({lookup} → {code}): not a listing, but the IP was not checked"),
                    format!("Query {zone} through your own resolver (not a public one such as 8.8.8.8), or register for its data feed."),
                )
            }
            Err(e) => no_answer("dnsbl", zone, &e),
        });
    }
    out
}
