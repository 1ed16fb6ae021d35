#!/usr/bin/env python3
"""Checks the test notifications that postlens sent by e-mail arrived.

Usage: notify_check.py --maildir DIR --user LOCALPART --domain DOMAIN --expect CH[,CH...] [--tls CH[,CH...]]
       [--timeout SECONDS]

Each channel CH sent to LOCALPART+CH@DOMAIN; Postfix's local(8) delivered it into DIR
(a Maildir) with `Delivered-To: LOCALPART+CH@DOMAIN`. Polls DIR/new until every expected
channel has exactly one message (or the timeout), then checks each: the Subject, a
text/plain UTF-8 body that decodes to the test text, Date, Message-ID, MIME-Version,
From, and for the channels in --tls a `Received:` header saying TLS was used (Postfix
adds that with smtpd_tls_received_header = yes), for the others none. Exit 1 on any
difference.
"""
import argparse
import email
import email.policy
import os
import sys
import time

SUBJECT = "[postlens] critical: Test notification from postlens"
TEXT = "This is a test. If you can read it, postlens can reach you on this channel."


def messages(maildir):
    out = []
    new = os.path.join(maildir, "new")
    for name in sorted(os.listdir(new)) if os.path.isdir(new) else []:
        with open(os.path.join(new, name), "rb") as f:
            out.append(email.message_from_binary_file(f, policy=email.policy.default))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--tls", default="")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    expect = [c for c in a.expect.split(",") if c]
    tls = {c for c in a.tls.split(",") if c}
    addr = {c: f"{a.user}+{c}@{a.domain}".lower() for c in expect}

    end = time.monotonic() + a.timeout
    while True:
        msgs = messages(a.maildir)
        by = {c: [m for m in msgs if str(m.get("Delivered-To", "")).lower() == addr[c]] for c in expect}
        if all(len(v) >= 1 for v in by.values()) or time.monotonic() > end:
            break
        time.sleep(0.2)

    bad = []
    for c in expect:
        got = by[c]
        if len(got) != 1:
            bad.append(f"{c}: {len(got)} messages delivered to {addr[c]} (want 1; {len(msgs)} in the Maildir)")
            continue
        m = got[0]
        problems = []
        if m["Subject"] != SUBJECT:
            problems.append(f"Subject {m['Subject']!r}")
        for h in ("Date", "Message-ID", "MIME-Version", "From"):
            if not m[h]:
                problems.append(f"no {h}")
        if not str(m["From"]).endswith("<postlens@e2e.test>"):
            problems.append(f"From {m['From']!r}")
        if m.get_content_type() != "text/plain" or (m.get_content_charset() or "").lower() != "utf-8":
            problems.append(f"Content-Type {m['Content-Type']!r}")
        if m["Content-Transfer-Encoding"] != "base64":
            problems.append(f"Content-Transfer-Encoding {m['Content-Transfer-Encoding']!r}")
        body = m.get_content()
        if not body.startswith(TEXT):
            problems.append(f"body {body[:120]!r}")
        if "postlens: test (critical)" not in body:
            problems.append(f"no signature line in {body!r}")
        used_tls = any("using TLS" in str(r) for r in m.get_all("Received", []))
        if used_tls != (c in tls):
            problems.append(f"TLS used: {used_tls}, expected {c in tls}")
        if problems:
            bad.append(f"{c}: " + "; ".join(problems))
        else:
            print(f"notify_check: {c}: delivered to {addr[c]}, Message-ID {m['Message-ID']}, TLS {used_tls}")
    for b in bad:
        print(f"notify_check: {b}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
