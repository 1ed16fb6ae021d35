//! Line formats. Syslog classic, RFC 3339 and prepend-rfc3339 are
//! auto-detected per line by the parser's header decoder (real files mix
//! them); Logstash JSON (`{"@timestamp":…,"host":…,"message":…}`) must be
//! chosen explicitly and is rewritten into an RFC 3339 syslog line in a
//! caller-owned scratch buffer.

use serde::Deserialize;
use std::borrow::Cow;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Auto-detect classic syslog, RFC 3339 and prepend-rfc3339 per line.
    Default,
    Rfc3339,
    PrependRfc3339,
    Logstash,
}

#[derive(Deserialize)]
struct Logstash<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    host: Option<Host<'a>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Host<'a> {
    #[serde(borrow)]
    Name(Cow<'a, str>),
    Object {
        #[serde(borrow)]
        name: Option<Cow<'a, str>>,
        #[serde(borrow)]
        hostname: Option<Cow<'a, str>>,
    },
}

/// Returns the syslog line to parse: `line` itself, or for Logstash the
/// rebuilt line in `scratch`. `None`: the record is not usable (malformed).
pub fn decode<'a>(format: LogFormat, line: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    if format != LogFormat::Logstash {
        return Some(line);
    }
    let rec: Logstash<'_> = serde_json::from_slice(line).ok()?;
    let msg = rec.message?;
    scratch.clear();
    // A message that already carries a syslog header is used as is.
    if crate::parse::parse(msg.as_bytes()).is_ok_and(|_| true) || msg.starts_with(|c: char| c.is_ascii_digit()) {
        scratch.extend_from_slice(msg.as_bytes());
        return Some(scratch);
    }
    let ts = rec.timestamp?;
    let host = match rec.host {
        Some(Host::Name(n)) => n,
        Some(Host::Object { name, hostname }) => name.or(hostname).unwrap_or(Cow::Borrowed("-")),
        None => Cow::Borrowed("-"),
    };
    scratch.extend_from_slice(ts.as_bytes());
    scratch.push(b' ');
    scratch.extend_from_slice(host.as_bytes());
    scratch.push(b' ');
    scratch.extend_from_slice(msg.as_bytes());
    Some(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logstash_records() {
        let mut s = Vec::new();
        let l =
            br#"{"@timestamp":"2021-03-06T06:09:00.000Z","host":{"name":"mx1"},"message":"postfix/qmgr[28829]: A1E1E1880093: removed"}"#;
        let out = decode(LogFormat::Logstash, l, &mut s).expect("decoded");
        assert_eq!(out, b"2021-03-06T06:09:00.000Z mx1 postfix/qmgr[28829]: A1E1E1880093: removed");
        assert!(crate::parse::parse(out).is_ok());
        let l = br#"{"@timestamp":"2021-03-06T06:09:00Z","host":"mx1","message":"Mar  6 07:08:59 host postfix/qmgr[28829]: A1E1E1880093: removed"}"#;
        assert!(crate::parse::parse(decode(LogFormat::Logstash, l, &mut s).expect("x")).is_ok());
        assert!(decode(LogFormat::Logstash, b"not json", &mut s).is_none());
    }
}
