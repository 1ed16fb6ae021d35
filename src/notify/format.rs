//! Wire formats: the Slack message, the generic webhook's JSON body and the
//! RFC 5322 e-mail. Pure functions of a [`Notification`] (and the sending
//! time and a random Message-ID part, passed in); no I/O.

use super::{Notification, Severity};
use crate::clock::Timestamp;
use crate::limits::{NOTIFY_MAX_TEXT, NOTIFY_MAX_TITLE};
use base64::Engine as _;
use std::fmt::Write as _;

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

/// The title on one line (control characters become spaces), cut.
fn one_line_title(n: &Notification) -> String {
    let t: String = n.title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cut(t.trim(), NOTIFY_MAX_TITLE).into_owned()
}

/// Slack's three escaped characters (`mrkdwn` treats `<…>` as links).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The `text` of a Slack message (bot or webhook).
pub(crate) fn slack_text(n: &Notification) -> String {
    let icon = match n.severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    };
    let mut t = format!("{icon} *{}* ({})\n{}", slack_escape(&one_line_title(n)), n.severity, slack_escape(&cut(&n.text, NOTIFY_MAX_TEXT)));
    if let Some(link) = &n.link
        && !link.contains(['|', '>', '<'])
    {
        let _ = write!(t, "\n<{link}|Open in postlens>");
    }
    t
}

/// The body of a Slack post: webhook without `channel`, bot with it.
pub(crate) fn slack_body(n: &Notification, channel: Option<&str>) -> Vec<u8> {
    let mut o = serde_json::json!({ "text": slack_text(n), "unfurl_links": false, "unfurl_media": false });
    if let Some(c) = channel {
        o["channel"] = c.into();
    }
    o.to_string().into_bytes()
}

/// The generic webhook's body (documented on `ChannelKind::Webhook`).
pub(crate) fn webhook_body(n: &Notification) -> Vec<u8> {
    let text = cut(&n.text, NOTIFY_MAX_TEXT);
    let priority = match n.severity {
        Severity::Info => 2,
        Severity::Warning => 5,
        Severity::Critical => 8,
    };
    serde_json::json!({
        "kind": n.kind,
        "severity": n.severity,
        "title": one_line_title(n),
        "text": text,
        "link": n.link,
        "time": n.time.rfc3339(),
        "message": text,
        "priority": priority,
    })
    .to_string()
    .into_bytes()
}

/// RFC 5322 date, e.g. `Sun, 22 Nov 2026 03:04:52 +0000`.
fn rfc5322_date(t: Timestamp) -> String {
    jiff::Timestamp::from_second(t.0)
        .map_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into(), |t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
}

/// A header value as RFC 2047 encoded words when it is not plain ASCII
/// (or could be mistaken for encoded words), folded so no line passes 78.
fn encode_header(name: &str, value: &str) -> String {
    let plain = value.is_ascii() && !value.contains("=?") && name.len() + 2 + value.len() <= 78;
    if plain {
        return format!("{name}: {value}\r\n");
    }
    // 39 bytes of UTF-8 → 52 base64 characters: `=?UTF-8?B?` + 52 + `?=`
    // is 64, under the 75 an encoded word may have, and a first line of
    // `Subject: ` + 64 stays under 78.
    let mut out = format!("{name}:");
    let mut start = 0;
    while start < value.len() {
        let mut end = (start + 39).min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        if start > 0 {
            out.push_str("\r\n");
        }
        let _ = write!(out, " =?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(&value.as_bytes()[start..end]));
        start = end;
    }
    out.push_str("\r\n");
    out
}

/// An e-mail: headers, then the body as UTF-8 text/plain in base64 (76
/// characters a line), CRLF line ends throughout. `now` is the Date;
/// `unique` makes the Message-ID (random bytes from the caller).
pub(crate) fn email(n: &Notification, from: &str, to: &[String], now: Timestamp, unique: u64) -> Vec<u8> {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let mut m = String::with_capacity(1024);
    let _ = write!(m, "Date: {}\r\n", rfc5322_date(now));
    let _ = write!(m, "From: postlens <{from}>\r\n");
    m.push_str(&encode_header("To", &to.join(", ")));
    m.push_str(&encode_header("Subject", &format!("[postlens] {}: {}", n.severity, one_line_title(n))));
    let _ = write!(m, "Message-ID: <postlens.{}.{unique:016x}@{domain}>\r\n", now.0);
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n");
    m.push_str("Auto-Submitted: auto-generated\r\n");
    let kind: String = n.kind.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
    let _ = write!(m, "X-Postlens-Kind: {kind}\r\nX-Postlens-Severity: {}\r\n\r\n", n.severity);

    let mut body = cut(&n.text, NOTIFY_MAX_TEXT).replace("\r\n", "\n");
    body.push('\n');
    if let Some(link) = &n.link {
        let _ = write!(body, "\nMore: {link}\n");
    }
    let _ = write!(body, "\n-- \npostlens: {} ({}) at {}\n", n.kind, n.severity, n.time.rfc3339());
    let body = body.replace('\n', "\r\n");
    let b64 = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    for chunk in b64.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        m.push_str("\r\n");
    }
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(title: &str, text: &str) -> Notification {
        Notification {
            kind: "high_bounce_rate".into(),
            severity: Severity::Critical,
            title: title.into(),
            text: text.into(),
            link: Some("https://postlens.example/insights/7".into()),
            time: Timestamp(1_795_000_000),
        }
    }

    fn b64(s: &str) -> String {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcdef", 5), "ab…");
        assert_eq!(cut("ääää", 6), "ä…", "never splits a character");
        assert!(cut(&"x".repeat(10_000), NOTIFY_MAX_TEXT).len() <= NOTIFY_MAX_TEXT);
    }

    #[test]
    fn slack_escapes_and_links() {
        let t = slack_text(&n("Bounces <5%> & more", "a <b>"));
        assert_eq!(
            t,
            ":rotating_light: *Bounces &lt;5%&gt; &amp; more* (critical)\na &lt;b&gt;\n<https://postlens.example/insights/7|Open in postlens>"
        );
        let body: serde_json::Value = serde_json::from_slice(&slack_body(&n("t", "x"), Some("C123"))).unwrap();
        assert_eq!(body["channel"], "C123");
        let hook: serde_json::Value = serde_json::from_slice(&slack_body(&n("t", "x"), None)).unwrap();
        assert!(hook.get("channel").is_none());
    }

    #[test]
    fn webhook_body_has_the_documented_keys() {
        let v: serde_json::Value = serde_json::from_slice(&webhook_body(&n("Title\nline", "Text"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "high_bounce_rate", "severity": "critical", "title": "Title line", "text": "Text",
                "link": "https://postlens.example/insights/7", "time": "2026-11-18T11:06:40Z", "message": "Text", "priority": 8})
        );
    }

    #[test]
    fn email_is_rfc5322_with_mime() {
        let m = String::from_utf8(email(
            &n("Bounce rate 12 %", "Line 1\nLine 2"),
            "pl@example.org",
            &["a@example.org".into()],
            Timestamp(1_795_000_000),
            0xabc,
        ))
        .unwrap();
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Date: Wed, 18 Nov 2026 11:06:40 +0000\r\n"), "{head}");
        assert!(head.contains("From: postlens <pl@example.org>\r\nTo: a@example.org\r\n"), "{head}");
        assert!(head.contains("Subject: [postlens] critical: Bounce rate 12 %\r\n"), "{head}");
        assert!(head.contains("Message-ID: <postlens.1795000000.0000000000000abc@example.org>\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"), "{head}");
        assert!(!m.replace("\r\n", "").contains(['\r', '\n']), "CRLF only");
        assert!(body.lines().all(|l| l.len() <= 76));
        let text = b64(&body.replace("\r\n", ""));
        assert!(text.starts_with("Line 1\r\nLine 2\r\n\r\nMore: https://postlens.example/insights/7\r\n"), "{text}");
    }

    #[test]
    fn non_ascii_subject_is_encoded_and_folded() {
        let title = "Überlastung bei Zustellung an große Postfächer — mehr als zwanzig Prozent zurückgewiesen";
        let m = String::from_utf8(email(&n(title, "x"), "pl@example.org", &["a@example.org".into()], Timestamp(0), 1)).unwrap();
        let subject: Vec<&str> =
            m.lines().skip_while(|l| !l.starts_with("Subject:")).take_while(|l| l.starts_with("Subject:") || l.starts_with(' ')).collect();
        assert!(subject.len() > 1, "folded: {subject:?}");
        let mut decoded = String::new();
        for l in &subject {
            assert!(l.len() <= 78, "{l}");
            let w = l.trim_start_matches("Subject:").trim();
            let inner = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).unwrap();
            decoded.push_str(&b64(inner));
        }
        assert_eq!(decoded, format!("[postlens] critical: {title}"));
    }

    #[test]
    fn header_injection_is_impossible() {
        let m =
            String::from_utf8(email(&n("a\r\nBcc: evil@example.org", "x"), "pl@example.org", &["a@example.org".into()], Timestamp(0), 1))
                .unwrap();
        assert!(!m.contains("\r\nBcc:"), "{m}");
    }
}
