//! Conformance with whyscream/postfix-grok-patterns (`test/*.yaml`): each case
//! is a header-less Postfix message (`data:`) and the fields the grok pattern
//! extracts (`results:`). We put a synthetic syslog header in front
//! (`Jan  1 00:00:00 host postfix/<daemon>[1]: `, daemon from the file name),
//! parse the line, and compare every expected field that has a postlens
//! counterpart: queue ID, client/relay host, address and port, status, DSN,
//! addresses, message-id, delays, SASL mechanism, size/nrcpt, reject stage and
//! codes, bounce notification ID, disconnect command count. Fields postlens
//! does not keep (TLS details, anvil/scache statistics, postscreen verdict
//! details, free-text messages…) are skipped and counted as such.
//!
//! The YAML files are tiny and regular, so they are read with a hand parser
//! (no YAML dependency).

mod common;

use postlens::parse::{Event, Kind, Peer, Status, Unparsed, parse};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One YAML case: `data` and the `results` map, in file order.
struct Case {
    file: String,
    data: String,
    results: Vec<(String, String)>,
}

/// Undoes YAML scalar quoting: `"…"` with backslash escapes, `'…'` with `''`,
/// or a plain scalar.
fn unquote(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = String::new();
        let mut it = inner.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        }
        return out;
    }
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    v.to_owned()
}

fn read_case(path: &std::path::Path) -> Case {
    let text = std::fs::read_to_string(path).expect("read yaml");
    let mut data = None;
    let mut results = Vec::new();
    let mut in_results = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indented = line.len() != trimmed.len();
        let Some((k, v)) = trimmed.split_once(':') else { continue };
        if !indented {
            in_results = k == "results";
            if k == "data" {
                data = Some(unquote(v));
            }
        } else if in_results {
            results.push((k.trim().to_owned(), unquote(v)));
        }
    }
    Case { file: path.file_name().expect("name").to_string_lossy().into_owned(), data: data.expect("data:"), results }
}

/// Splits whyscream's `postfix_keyvalue_data` (`to=<a>, relay=r, …` or
/// `from=<a> to=<b> proto=ESMTP`) into key/value pairs, brackets kept.
fn key_values(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].to_owned();
        let v = &rest[eq + 1..];
        let end = if v.starts_with('<') {
            // The closing `>` followed by a separator or the end.
            let b = v.as_bytes();
            (1..b.len()).find(|&i| b[i] == b'>' && matches!(b.get(i + 1), None | Some(b',' | b' '))).map_or(v.len(), |i| i + 1)
        } else {
            v.find([',', ' ']).unwrap_or(v.len())
        };
        out.push((key, v[..end].to_owned()));
        rest = &v[end..];
    }
    out
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn unbracket(v: &str) -> &str {
    v.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(v)
}

/// What postlens knows about a line, under whyscream's field names.
fn facts(ev: &Event<'_>) -> BTreeMap<&'static str, String> {
    let mut f = BTreeMap::new();
    let peer = |f: &mut BTreeMap<&'static str, String>, p: &Peer<'_>, side: &str| {
        let (n, a, port) = if side == "client" {
            ("postfix_client_hostname", "postfix_client_ip", "postfix_client_port")
        } else {
            ("postfix_relay_hostname", "postfix_relay_ip", "postfix_relay_port")
        };
        f.insert(n, s(p.name));
        f.insert(a, s(p.addr));
        if let Some(x) = p.port {
            f.insert(port, x.to_string());
        }
    };
    match ev.kind {
        Kind::Connect { client } | Kind::SaslFailed { client, .. } => peer(&mut f, &client, "client"),
        Kind::Disconnect { client, commands } => {
            peer(&mut f, &client, "client");
            if let Some(c) = commands {
                f.insert("postfix_cmd_count", c.to_string());
            }
        }
        Kind::LostConnection { client, after } => {
            peer(&mut f, &client, "client");
            // `DATA (7774180 bytes)`: the stage is the first word.
            f.insert("postfix_smtp_stage", s(after.split(|&c| c == b' ').next().unwrap_or(after)));
        }
        Kind::Client { qid, client, sasl_user } => {
            f.insert("postfix_queueid", s(qid.0));
            peer(&mut f, &client, "client");
            f.insert("kv:client", format!("{}[{}]", s(client.name), s(client.addr)));
            if let Some(u) = sasl_user {
                f.insert("postfix_sasl_username", s(u));
            }
        }
        Kind::Reject { qid, stage, client, reply, from, to } => {
            f.insert("postfix_queueid", qid.map_or_else(|| "NOQUEUE".to_owned(), |q| s(q.0)));
            f.insert("postfix_smtp_stage", s(stage));
            if let Some(c) = client {
                peer(&mut f, &c, "client");
            }
            let mut words = reply.split(|&c| c == b' ').filter(|w| !w.is_empty());
            if let Some(code) = words.next().filter(|w| w.len() == 3 && w.iter().all(u8::is_ascii_digit)) {
                f.insert("postfix_status_code", s(code));
                if let Some(enh) = words.next().filter(|w| w.first().is_some_and(u8::is_ascii_digit) && w.contains(&b'.')) {
                    f.insert("postfix_status_code_enhanced", s(enh));
                }
            }
            if let Some(x) = from {
                f.insert("kv:from", s(x));
            }
            if let Some(x) = to {
                f.insert("kv:to", s(x));
            }
        }
        Kind::MessageId { qid, message_id } => {
            f.insert("postfix_queueid", s(qid.0));
            f.insert("postfix_message-id", unbracket(&s(message_id)).to_owned());
        }
        Kind::QueueActive { qid, from, size, nrcpt } => {
            f.insert("postfix_queueid", s(qid.0));
            f.insert("kv:from", s(from));
            f.insert("kv:size", size.to_string());
            f.insert("kv:nrcpt", nrcpt.to_string());
        }
        Kind::Removed { qid } | Kind::AdminRemoved { qid } => {
            f.insert("postfix_queueid", s(qid.0));
        }
        Kind::Expired { qid, from } => {
            f.insert("postfix_queueid", s(qid.0));
            f.insert("postfix_from", s(from));
            f.insert("postfix_status", "expired".to_owned());
        }
        Kind::Pickup { qid, from } => {
            f.insert("postfix_queueid", s(qid.0));
            f.insert("kv:from", s(from));
        }
        Kind::Notification { qid, new_qid, .. } => {
            f.insert("postfix_queueid", s(qid.0));
            f.insert("postfix_bounce_queueid", s(new_qid.0));
        }
        Kind::Delivery(d) => {
            f.insert("postfix_queueid", s(d.qid.0));
            let status = match d.status {
                Status::Sent => "sent",
                Status::Deferred => "deferred",
                Status::Bounced => "bounced",
                Status::Expired => "expired",
                Status::Probe => "probe",
            };
            f.insert("postfix_status", status.to_owned());
            f.insert("kv:to", s(d.to));
            if let Some(o) = d.orig_to {
                f.insert("kv:orig_to", s(o));
            }
            f.insert("kv:relay", s(d.relay));
            for (k, v) in [("kv:delay", d.delay), ("kv:delays", d.delays), ("kv:dsn", d.dsn)] {
                if let Some(v) = v {
                    f.insert(k, s(v));
                }
            }
        }
        Kind::Info { client: Some(a) } => {
            // Recognised diagnostics keep only the peer address, whichever
            // side (client or relay) it is.
            f.insert("postfix_client_ip", s(a));
            f.insert("postfix_relay_ip", s(a));
        }
        _ => {}
    }
    f
}

/// Expected fields that have no postlens meaning at all (TLS, anvil,
/// scache, postscreen, verify and postsuper details, free text).
fn outside_postlens(key: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "postfix_tls_",
        "postfix_anvil_",
        "postfix_scache_",
        "postfix_postscreen_",
        "postfix_verify_",
        "postfix_postsuper_",
        "postfix_requiretls",
        "postfix_proxy_",
        "postfix_prepend_",
        "postfix_milter_",
        "postfix_dnsbl_",
        "postfix_delay_",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
        || (key.starts_with("postfix_cmd_") && key != "postfix_cmd_count")
        || matches!(
            key,
            "postfix_message"
                | "postfix_message_level"
                | "postfix_status_message"
                | "postfix_status_data"
                | "postfix_smtp_response"
                | "postfix_local_response"
                | "postfix_pipe_response"
                | "postfix_error_response"
                | "postfix_smtpd_lostconn_data"
                | "postfix_smtp_lostconn_data"
                | "postfix_smtp_lostconn_reason"
                | "postfix_bounce_recipient"
                | "postfix_bounce_reason"
                | "postfix_service"
                | "postfix_client_ip_unknown"
                | "postfix_version"
                | "postfix_config_path"
                | "postfix_termination_signal"
                | "postfix_server_ip"
                | "postfix_server_port"
                | "postfix_pix_workaround"
                | "postfix_discarded_ehlo_keywords"
                | "postfix_command_counter_data"
                | "postfix_relay_service"
        )
}

#[derive(Default)]
struct Tally {
    cases: u32,
    compared: u32,
    matched: u32,
    skipped_outside: u32,
    skipped_not_carried: u32,
    skipped_cases: u32,
    mismatches: Vec<String>,
    not_carried: Vec<String>,
}

impl Tally {
    fn check(&mut self, file: &str, key: &str, ours: Option<&String>, want: &str) {
        if let Some(v) = ours {
            self.compared += 1;
            if v == want {
                self.matched += 1;
            } else {
                self.mismatches.push(format!("{file}: {key}: ours {v:?}, expected {want:?}"));
            }
        } else {
            self.skipped_not_carried += 1;
            self.not_carried.push(format!("{file}: {key}={want:?}"));
        }
    }
}

#[test]
fn whyscream_grok_expectations() {
    let Some(dir) = common::corpus() else { return };
    let mut paths: Vec<_> = std::fs::read_dir(dir.join("whyscream-postfix-grok-patterns/test"))
        .expect("whyscream dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 191, "whyscream case count");
    let mut t = Tally::default();
    for path in &paths {
        let case = read_case(path);
        let pattern = case.file.rsplit_once('_').map_or(case.file.as_str(), |(p, _)| p);
        // Sub-patterns of whyscream, not log messages of any daemon: a bare
        // `delays=` value, a bare `relay=` value, the TLS feature list and
        // the disconnect command counters on their own.
        if matches!(pattern, "delays" | "relay" | "tls_features" | "command_counter_data") {
            t.skipped_cases += 1;
            t.skipped_outside += u32::try_from(case.results.len()).expect("small");
            continue;
        }
        let program = match pattern {
            "script" => "postfix/postfix-script".to_owned(),
            p => format!("postfix/{}", p.replace('_', "-")),
        };
        let line = format!("Jan  1 00:00:00 host {program}[1]: {}", case.data);
        t.cases += 1;
        let ev = match parse(line.as_bytes()) {
            Ok(ev) => ev,
            Err(e) => {
                t.mismatches.push(format!("{}: not parsed ({e:?}): {line}", case.file));
                continue;
            }
        };
        let f = facts(&ev);
        for (key, value) in &case.results {
            let key = key.as_str();
            match key {
                "postfix_keyvalue_data" => {
                    for (k, v) in key_values(value) {
                        match k.as_str() {
                            // Not kept by postlens.
                            "proto" | "helo" | "uid" | "sasl_method" => t.skipped_outside += 1,
                            "client" | "relay" | "delay" | "delays" | "dsn" | "size" | "nrcpt" => {
                                t.check(&case.file, &k, f.get(format!("kv:{k}").as_str()), &v);
                            }
                            _ => t.check(&case.file, &k, f.get(format!("kv:{k}").as_str()), unbracket(&v)),
                        }
                    }
                }
                // What the grok pattern calls the action: a refusal must be
                // our `Reject`, any other access action must not be.
                "postfix_action" => {
                    t.compared += 1;
                    let is_reject = matches!(ev.kind, Kind::Reject { .. });
                    let refusal = matches!(value.as_str(), "reject" | "milter-reject" | "proxy-reject");
                    if is_reject == refusal {
                        t.matched += 1;
                    } else {
                        t.mismatches.push(format!("{}: action {value} but kind {:?}", case.file, ev.kind));
                    }
                }
                // Address-verification probe outcomes are one status to us.
                "postfix_status" if value == "undeliverable-but-not-cached" || value == "deliverable" || value == "undeliverable" => {
                    t.check(&case.file, key, f.get(key), "probe");
                }
                // A queue ID on a per-message diagnostic that postlens keeps
                // as `Info` (no message state changes).
                "postfix_queueid" if matches!(ev.kind, Kind::Info { .. }) => {
                    t.skipped_not_carried += 1;
                }
                "postfix_client_hostname" | "postfix_client_port" | "postfix_relay_hostname" | "postfix_relay_port"
                    if matches!(ev.kind, Kind::Info { .. }) =>
                {
                    // Diagnostics keep the address only.
                    t.skipped_not_carried += 1;
                }
                _ if outside_postlens(key) => t.skipped_outside += 1,
                _ => t.check(&case.file, key, f.get(key), value),
            }
        }
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "whyscream: {} cases parsed-and-compared ({} sub-pattern cases skipped); fields matched {}/{} compared; skipped: {} outside postlens's meaning, {} not carried for that line kind",
        t.cases, t.skipped_cases, t.matched, t.compared, t.skipped_outside, t.skipped_not_carried
    );
    for n in &t.not_carried {
        let _ = writeln!(report, "  not carried: {n}");
    }
    for m in &t.mismatches {
        let _ = writeln!(report, "  MISMATCH: {m}");
    }
    println!("{report}");
    assert!(t.compared > 300, "too few fields compared: {}", t.compared);
    assert!(t.mismatches.is_empty(), "{} whyscream mismatches:\n{report}", t.mismatches.len());
}

#[test]
fn unparsed_is_only_for_unknown_messages() {
    // Guard for the harness itself: an unknown smtpd message is
    // `Unsupported`, so a parse failure above is a real finding.
    assert_eq!(parse(b"Jan  1 00:00:00 host postfix/smtpd[1]: zzz").unwrap_err(), Unparsed::Unsupported(postlens::parse::Daemon::Smtpd));
}
