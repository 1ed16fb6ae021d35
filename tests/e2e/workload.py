#!/usr/bin/env python3
"""Workload driver, truth builder and log cross-check for the postlens e2e harness.

  workload.py run        --work DIR --sasl-user U --sasl-pass P
      sends the workload (swaks, smtplib, sendmail, imaplib, poplib) and records what every
      client saw in DIR/workload.json (SMTP transcripts in DIR/swaks/).
  workload.py truth      --work DIR --sasl-user U --sasl-pass P --out truth.json [--detail F]
      computes the stats truth ONLY from client-side observations: workload.json, the stand-in
      MX's JSON log (DIR/mx.jsonl), the delivered mailboxes (local Maildirs, Dovecot via IMAP)
      and the notifications delivered to the sender's mailbox (their DSN parts).
  workload.py crosscheck --truth truth.json --log mail-classic.log
      independent sanity check: counts a few line kinds with plain regexes and compares with
      the truth (the truth itself never comes from the log).
"""
import argparse
import collections
import email
import email.parser
import imaplib
import json
import os
import poplib
import pwd
import re
import smtplib
import socket
import subprocess
import sys
import time
from email.utils import make_msgid, formatdate

SENDER = "e2e-sender@local.test"
LOCAL_USERS = ["e2e-alice", "e2e-bob", "e2e-sender"]          # system users, ~/Maildir
SMTP_HOST = "127.0.0.1"
PORT_SMTP, PORT_SUBMISSION, PORT_IMAP, PORT_POP3 = 25, 587, 143, 110
OUTBOUND_DOMAINS = {"remote.test"}
INBOUND_DOMAINS = {"local.test", "lmtp.test"}

# (name, port, client IP, authenticate?, recipients). Remote recipient addresses are unique
# across the workload: the stand-in MX keys its defer-then-accept counter by address.
SMTP_MESSAGES = [
    ("out-single",        PORT_SUBMISSION, "127.0.0.1", True,  ["ok1@remote.test"]),
    ("out-multi",         PORT_SUBMISSION, "127.0.0.1", True,  ["ok2@remote.test", "ok3@remote.test", "ok4@remote.test"]),
    ("out-ok-bounce",     PORT_SUBMISSION, "127.0.0.1", True,  ["ok5@remote.test", "bounce1@remote.test"]),
    ("out-defer",         PORT_SUBMISSION, "127.0.0.1", True,  ["defer1@remote.test"]),
    ("out-defer-ok",      PORT_SUBMISSION, "127.0.0.1", True,  ["defer2@remote.test", "ok6@remote.test"]),
    ("out-bounce-2",      PORT_SUBMISSION, "127.0.0.1", True,  ["bounce2@remote.test", "bounce3@remote.test"]),
    ("out-expire",        PORT_SUBMISSION, "127.0.0.1", True,  ["expire1@remote.test"]),
    ("out-mixed",         PORT_SUBMISSION, "127.0.0.1", True,  ["expire2@remote.test", "ok7@remote.test", "bounce4@remote.test"]),
    ("in-alice",          PORT_SMTP,       "127.0.0.1", False, ["e2e-alice@local.test"]),
    ("in-multi",          PORT_SMTP,       "127.0.0.6", False, ["e2e-alice@local.test", "e2e-bob@local.test", "e2e@lmtp.test"]),
    ("in-partial-reject", PORT_SMTP,       "127.0.0.6", False, ["e2e-bob@local.test", "nosuch1@local.test"]),
    ("in-lmtp-bounce",    PORT_SMTP,       "127.0.0.6", False, ["ghost@lmtp.test"]),
    ("reject-unknown",    PORT_SMTP,       "127.0.0.7", False, ["nosuch2@local.test"]),
    ("reject-relay",      PORT_SMTP,       "127.0.0.5", False, ["ok-relay@remote.test"]),
]
DSN_MESSAGE = ("out-dsn-success", ["ok8@remote.test"])              # smtplib, NOTIFY=SUCCESS
PICKUP_MESSAGES = [("pickup-local", ["e2e-bob@local.test"]),        # /usr/sbin/sendmail
                   ("pickup-out", ["ok9@remote.test"])]
# SMTP AUTH failures on the submission port: (client IP, mechanism, user, password)
SMTP_AUTH_FAILS = [
    ("127.0.0.2", "PLAIN", None, "wrong-1"),
    ("127.0.0.2", "PLAIN", None, "wrong-2"),
    ("127.0.0.3", "LOGIN", None, "wrong-3"),
    ("127.0.0.3", "PLAIN", "nobody@lmtp.test", "wrong-4"),
]
# IMAP / POP3 login failures: (proto, client IP, wrong attempts in one connection, polite logout?)
LOGIN_FAILS = [
    ("imap", "127.0.0.2", 2, True),
    ("imap", "127.0.0.3", 1, False),
    ("imap", "127.0.0.4", 1, True),
    ("pop3", "127.0.0.4", 1, True),
]

SUBJ_NDR = "Undelivered Mail Returned to Sender"
SUBJ_DELAY = "Delayed Mail (still being retried)"
SUBJ_SUCCESS = "Successful Mail Delivery Report"


def say(*a):
    print("[workload]", *a, file=sys.stderr, flush=True)


def domain(addr):
    return addr.rsplit("@", 1)[1].lower()


# ------------------------------------------------------------------ swaks transcript parsing
def parse_swaks(text):
    """What the client saw: banner, auth replies, per-RCPT replies, end-of-DATA reply."""
    r = {"banner": None, "auth": [], "mail": None, "rcpt": {}, "data": None, "queue_id": None}
    pending = None      # the command waiting for its final reply
    in_data = False
    last_family = None
    for line in text.splitlines():
        tag, t = line[:4], line[4:]
        if tag in (" -> ", " ~> "):
            if in_data:
                if t == ".":
                    in_data = False
                    pending = ("DATAEND", None)
                continue
            u = t.upper()
            if u.startswith(("EHLO", "HELO")):
                pending = ("EHLO", None)
            elif u.startswith("MAIL FROM"):
                pending = ("MAIL", None)
            elif u.startswith("RCPT TO"):
                m = re.search(r"<([^>]*)>", t)
                pending = ("RCPT", m.group(1) if m else t[8:].strip())
            elif u.startswith("DATA"):
                pending = ("DATA", None)
            elif u.startswith("AUTH"):
                pending = ("AUTH", None)
            elif u.startswith("QUIT"):
                pending = ("QUIT", None)
            elif last_family == "AUTH":
                pending = ("AUTH", None)       # AUTH LOGIN continuation lines
            else:
                pending = ("OTHER", None)
            last_family = pending[0]
        elif tag in ("<-  ", "<** ", "<~  ", "<~* "):
            m = re.match(r"(\d{3})([ -]?)(.*)", t)
            if not m or m.group(2) == "-":
                continue
            code = int(m.group(1))
            if pending is None:
                if r["banner"] is None:
                    r["banner"] = code
                continue
            kind, arg = pending
            pending = None
            if kind == "AUTH":
                if code != 334:
                    r["auth"].append(code)
            elif kind == "MAIL":
                r["mail"] = code
            elif kind == "RCPT":
                r["rcpt"][arg] = code
            elif kind == "DATA":
                if code == 354:
                    in_data = True
                else:
                    r["data"] = code
            elif kind == "DATAEND":
                r["data"] = code
                q = re.search(r"queued as (\S+)", m.group(3))
                r["queue_id"] = q.group(1) if q else None
    return r


def swaks(work, name, args):
    cmd = ["swaks", "--server", SMTP_HOST, "--timeout", "30"] + args
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    text = p.stdout.decode("utf-8", "replace")
    os.makedirs(os.path.join(work, "swaks"), exist_ok=True)
    with open(os.path.join(work, "swaks", name + ".txt"), "w") as f:
        f.write("$ " + " ".join(cmd) + "\n" + text + "\n[exit %d]\n" % p.returncode)
    r = parse_swaks(text)
    r["exit"] = p.returncode
    return r


# ------------------------------------------------------------------ clients with a source IP
class IMAPFrom(imaplib.IMAP4):
    def __init__(self, host, port, src, timeout=30):
        self._src = src
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._src, 0))


class POP3From(poplib.POP3):
    def __init__(self, host, port, src, timeout=30):
        self._src = src
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._src, 0))


# ------------------------------------------------------------------ run
def cmd_run(a):
    w = {"started": time.time(), "messages": [], "smtp_sessions": [], "auth": [], "logins": []}

    def record_session(name, kind, src, port, r):
        w["smtp_sessions"].append({"name": name, "kind": kind, "src": src, "port": port,
                                   "banner": r.get("banner"), "rcpt": r.get("rcpt", {}),
                                   "auth": r.get("auth", []), "data": r.get("data"),
                                   "mail": r.get("mail"), "exit": r.get("exit")})

    for i, (name, port, src, auth, rcpts) in enumerate(SMTP_MESSAGES):
        args = ["--port", str(port), "--local-interface", src, "--helo", "client%d.e2e.test" % i,
                "--from", SENDER, "--to", ",".join(rcpts),
                "--header", "Subject: e2e %s" % name, "--add-header", "X-E2E-ID: %s" % name]
        if auth:
            args += ["--auth", "PLAIN", "--auth-user", a.sasl_user, "--auth-password", a.sasl_pass]
        r = swaks(a.work, name, args)
        record_session(name, "message", src, port, r)
        accepted = [x for x in rcpts if r["rcpt"].get(x) == 250]
        queued = r["data"] == 250 and bool(accepted)
        w["messages"].append({"id": name, "via": "smtpd", "port": port, "src": src,
                              "rcpts": rcpts, "rcpt_replies": r["rcpt"], "accepted_rcpts": accepted if queued else [],
                              "queued": queued, "queue_id_seen": r["queue_id"]})
        say("%-18s rcpt=%s data=%s exit=%s" % (name, r["rcpt"], r["data"], r["exit"]))
        if r["banner"] != 220:
            raise SystemExit("swaks %s: no 220 banner (see %s/swaks/%s.txt)" % (name, a.work, name))

    # DSN NOTIFY=SUCCESS via smtplib (swaks has no DSN options)
    name, rcpts = DSN_MESSAGE
    s = smtplib.SMTP(SMTP_HOST, PORT_SUBMISSION, local_hostname="client-dsn.e2e.test",
                     source_address=("127.0.0.1", 0), timeout=30)
    s.ehlo()
    s.login(a.sasl_user, a.sasl_pass)
    code_mail, _ = s.mail(SENDER, ["RET=HDRS"])
    replies = {}
    for x in rcpts:
        replies[x] = s.rcpt(x, ["NOTIFY=SUCCESS"])[0]
    msg = ("From: <%s>\r\nTo: %s\r\nSubject: e2e %s\r\nX-E2E-ID: %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\n"
           "DSN success test\r\n" % (SENDER, ", ".join(rcpts), name, name, formatdate(localtime=True),
                                     make_msgid(domain="client.e2e.test")))
    code_data, resp = s.data(msg)
    s.quit()
    accepted = [x for x in rcpts if replies[x] == 250]
    queued = code_data == 250 and bool(accepted)
    q = re.search(rb"queued as (\S+)", resp or b"")
    w["smtp_sessions"].append({"name": name, "kind": "message", "src": "127.0.0.1", "port": PORT_SUBMISSION,
                               "banner": 220, "rcpt": replies, "auth": [235], "data": code_data,
                               "mail": code_mail, "exit": 0})
    w["messages"].append({"id": name, "via": "smtpd", "port": PORT_SUBMISSION, "src": "127.0.0.1",
                          "rcpts": rcpts, "rcpt_replies": replies, "accepted_rcpts": accepted if queued else [],
                          "queued": queued, "queue_id_seen": q.group(1).decode() if q else None})
    say("%-18s rcpt=%s data=%s (smtplib, NOTIFY=SUCCESS)" % (name, replies, code_data))

    # pickup: the sendmail command
    for name, rcpts in PICKUP_MESSAGES:
        msg = ("From: <%s>\nTo: %s\nSubject: e2e %s\nX-E2E-ID: %s\nDate: %s\nMessage-ID: %s\n\npickup test\n"
               % (SENDER, ", ".join(rcpts), name, name, formatdate(localtime=True),
                  make_msgid(domain="client.e2e.test")))
        p = subprocess.run(["/usr/sbin/sendmail", "-i", "-f", SENDER, "--"] + rcpts, input=msg.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        queued = p.returncode == 0
        w["messages"].append({"id": name, "via": "pickup", "rcpts": rcpts, "rcpt_replies": {},
                              "accepted_rcpts": rcpts if queued else [], "queued": queued,
                              "queue_id_seen": None, "sendmail_exit": p.returncode,
                              "sendmail_output": p.stdout.decode("utf-8", "replace")})
        say("%-18s sendmail exit=%d" % (name, p.returncode))
        if not queued:
            raise SystemExit("sendmail failed for %s: %s" % (name, p.stdout))

    # SMTP AUTH failures on the submission port
    for i, (src, mech, user, pw) in enumerate(SMTP_AUTH_FAILS):
        name = "authfail-%d" % i
        r = swaks(a.work, name, ["--port", str(PORT_SUBMISSION), "--local-interface", src,
                                 "--helo", "authfail%d.e2e.test" % i, "--from", SENDER,
                                 "--to", "ok-never@remote.test", "--quit-after", "AUTH",
                                 "--auth", mech, "--auth-user", user or a.sasl_user, "--auth-password", pw])
        record_session(name, "auth", src, PORT_SUBMISSION, r)
        fails = sum(1 for c in r["auth"] if c >= 500)
        w["auth"].append({"proto": "smtp", "ip": src, "failures": fails, "replies": r["auth"]})
        say("%-18s %s %s auth replies=%s exit=%s" % (name, src, mech, r["auth"], r["exit"]))
        if r["banner"] != 220:
            raise SystemExit("swaks %s: no 220 banner" % name)

    # IMAP / POP3 login failures
    for proto, src, n, polite in LOGIN_FAILS:
        fails = 0
        if proto == "imap":
            m = IMAPFrom(SMTP_HOST, PORT_IMAP, src)
            for k in range(n):
                try:
                    m.login(a.sasl_user, "wrong-imap-%d" % k)
                    raise SystemExit("IMAP login with a wrong password succeeded?!")
                except imaplib.IMAP4.error:
                    fails += 1
            if polite:
                m.logout()
            else:
                m.shutdown()
        else:
            p = POP3From(SMTP_HOST, PORT_POP3, src)
            for k in range(n):
                try:
                    p.user(a.sasl_user)
                    p.pass_("wrong-pop3-%d" % k)
                    raise SystemExit("POP3 login with a wrong password succeeded?!")
                except poplib.error_proto:
                    fails += 1
            if polite:
                p.quit()
            else:
                p.close()
        w["logins"].append({"proto": proto, "ip": src, "failures": fails, "polite": polite})
        say("%s login failures from %s: %d" % (proto, src, fails))

    w["finished"] = time.time()
    with open(os.path.join(a.work, "workload.json"), "w") as f:
        json.dump(w, f, indent=1, sort_keys=True)


# ------------------------------------------------------------------ truth
def read_maildir(path):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            with open(os.path.join(d, fn), "rb") as f:
                out.append(email.message_from_binary_file(f))
    return out


def e2e_id_of_part(part):
    """X-E2E-ID of the original message carried inside a notification."""
    ct = part.get_content_type()
    if ct == "message/rfc822":
        pl = part.get_payload()
        if isinstance(pl, list) and pl:
            return pl[0].get("X-E2E-ID")
    if ct == "text/rfc822-headers":
        h = email.parser.HeaderParser().parsestr(part.get_payload(decode=True).decode("utf-8", "replace"))
        return h.get("X-E2E-ID")
    return None


def parse_notification(msg):
    """-> (kind, original X-E2E-ID, [(final recipient, action, status)])"""
    subj = str(msg.get("Subject", "")).strip()
    kind = {SUBJ_NDR: "non_delivery", SUBJ_DELAY: "delay", SUBJ_SUCCESS: "success"}.get(subj)
    orig, recips = None, []
    for part in msg.walk():
        ct = part.get_content_type()
        if ct == "message/delivery-status":
            blocks = part.get_payload()
            for b in blocks[1:] if isinstance(blocks, list) else []:
                fr = str(b.get("Final-Recipient", "")).split(";", 1)[-1].strip()
                recips.append((fr.lower(), str(b.get("Action", "")).strip().lower(),
                               str(b.get("Status", "")).strip()))
        elif ct in ("message/rfc822", "text/rfc822-headers") and orig is None:
            orig = e2e_id_of_part(part)
    return kind, orig, recips


def imap_messages(user, pw):
    m = IMAPFrom(SMTP_HOST, PORT_IMAP, "127.0.0.1")
    m.login(user, pw)
    typ, data = m.select("INBOX", readonly=True)
    res = []
    typ, data = m.search(None, "ALL")
    for num in data[0].split():
        typ, d = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (X-E2E-ID SUBJECT DELIVERED-TO)])")
        h = email.parser.BytesHeaderParser().parsebytes(d[0][1])
        res.append(h)
    m.logout()
    return res


def cmd_truth(a):
    with open(os.path.join(a.work, "workload.json")) as f:
        w = json.load(f)
    mx = []
    with open(os.path.join(a.work, "mx.jsonl")) as f:
        for line in f:
            if line.strip():
                mx.append(json.loads(line))

    # --- stand-in MX: every RCPT reply it gave, and the recipients of accepted DATA
    mx_codes = collections.defaultdict(list)
    mx_delivered = collections.Counter()
    for e in mx:
        if e["event"] == "rcpt":
            mx_codes[e["rcpt"].lower()].append(e["code"])
        elif e["event"] == "data" and e["code"] == 250:
            for r in e["rcpts"]:
                mx_delivered[r.lower()] += 1

    # --- local mailboxes: client messages delivered (by X-E2E-ID) and notifications
    delivered = collections.Counter()            # (e2e id, recipient) -> count
    notifications = collections.Counter()
    failed = {}                                  # (e2e id, recipient) -> status from a DSN
    notif_detail = []
    for u in LOCAL_USERS:
        home = pwd.getpwnam(u).pw_dir
        for msg in read_maildir(os.path.join(home, "Maildir")):
            eid = msg.get("X-E2E-ID")
            if eid:
                delivered[(eid, "%s@local.test" % u)] += 1
                continue
            kind, orig, recips = parse_notification(msg)
            if kind is None:
                raise SystemExit("unexpected message in %s's mailbox: Subject %r" % (u, msg.get("Subject")))
            if u != "e2e-sender":
                raise SystemExit("notification delivered to %s, expected only e2e-sender" % u)
            notifications[kind] += 1
            notif_detail.append({"kind": kind, "original": orig, "recipients": recips})
            if kind == "non_delivery":
                if orig is None:
                    raise SystemExit("non-delivery notification without the original message's X-E2E-ID")
                for rcpt, action, status in recips:
                    if action == "failed":
                        failed[(orig, rcpt)] = status
    for h in imap_messages(a.sasl_user, a.sasl_pass):
        eid = h.get("X-E2E-ID")
        if not eid:
            raise SystemExit("unexpected message in %s's IMAP INBOX: Subject %r" % (a.sasl_user, h.get("Subject")))
        delivered[(eid, a.sasl_user.lower())] += 1

    # --- one delivery per (accepted client message, recipient)
    deliveries = []
    problems = []
    for m in w["messages"]:
        if not m["queued"]:
            continue
        for r in m["accepted_rcpts"]:
            rl = r.lower()
            dom = domain(rl)
            direction = "outbound" if dom in OUTBOUND_DOMAINS else "inbound"
            deferrals = 0
            if direction == "outbound":
                codes = mx_codes.get(rl, [])
                deferrals = sum(1 for c in codes if 400 <= c < 500)
                if mx_delivered[rl]:
                    status = "sent"
                elif (m["id"], rl) in failed:
                    st = failed[(m["id"], rl)]
                    status = "bounced" if st.startswith("5") else "expired"
                    if status == "bounced" and not any(c >= 500 for c in codes):
                        problems.append("%s %s: NDR says %s but the MX never gave it a 5xx" % (m["id"], rl, st))
                    if status == "expired" and any(c >= 500 for c in codes):
                        problems.append("%s %s: NDR says %s but the MX gave it a 5xx" % (m["id"], rl, st))
                else:
                    status = "unknown"
                if mx_delivered[rl] > 1:
                    problems.append("%s %s: delivered %d times to the MX" % (m["id"], rl, mx_delivered[rl]))
            else:
                if delivered[(m["id"], rl)]:
                    status = "sent"
                    if delivered[(m["id"], rl)] > 1:
                        problems.append("%s %s: delivered %d times" % (m["id"], rl, delivered[(m["id"], rl)]))
                elif (m["id"], rl) in failed:
                    st = failed[(m["id"], rl)]
                    status = "bounced" if st.startswith("5") else "expired"
                else:
                    status = "unknown"
            if status == "unknown":
                problems.append("%s %s: no final outcome seen by any client (queue drained?)" % (m["id"], rl))
            deliveries.append({"message": m["id"], "via": m["via"], "recipient": rl, "direction": direction,
                               "status": status, "deferrals": deferrals,
                               "client_queue_id": m.get("queue_id_seen")})
    # every MX RCPT must belong to a delivery of the workload
    known = {d["recipient"] for d in deliveries}
    for r in mx_codes:
        if r not in known:
            problems.append("the MX saw RCPT %s which is no accepted recipient of the workload" % r)

    def outcome_counts(ds):
        c = {"sent": 0, "bounced": 0, "expired": 0, "pending": 0}
        for d in ds:
            if d["status"] in c:
                c[d["status"]] += 1
        return c

    dl = outcome_counts(deliveries)
    dl["outbound"] = outcome_counts([d for d in deliveries if d["direction"] == "outbound"])
    dl["inbound"] = outcome_counts([d for d in deliveries if d["direction"] == "inbound"])

    # --- SMTP sessions: rejects and connections
    rejected = 0
    connections = 0
    for s in w["smtp_sessions"]:
        if s["banner"] == 220:
            connections += 1
        rejected += sum(1 for c in s["rcpt"].values() if c >= 400)
        if s.get("mail") is not None and s["mail"] >= 400:
            rejected += 1

    by_ip = {}
    for e in w["auth"] + w["logins"]:
        if e["failures"] <= 0:
            continue
        d = by_ip.setdefault(e["ip"], {"smtp": 0, "imap": 0, "pop3": 0, "other": 0})
        d[e["proto"]] += e["failures"]
    total = sum(sum(v.values()) for v in by_ip.values())

    msg_with_deferral = {d["message"] for d in deliveries if d["deferrals"] > 0}
    truth = {
        "deliveries": dl,
        "deferrals": sum(d["deferrals"] for d in deliveries),
        "deferred_then_sent": sum(1 for d in deliveries if d["deferrals"] > 0 and d["status"] == "sent"),
        "messages": {"queued": sum(1 for m in w["messages"] if m["queued"]),
                     "with_deferral": len(msg_with_deferral)},
        "notifications": {"non_delivery": notifications["non_delivery"], "delay": notifications["delay"],
                          "success": notifications["success"]},
        "rejected": rejected,
        "connections": connections,
        "auth_failures": {"total": total, "by_ip": by_ip},
    }
    detail = {"deliveries": deliveries, "notifications": notif_detail,
              "expired_messages": sorted({d["message"] for d in deliveries if d["status"] == "expired"}),
              "problems": problems}
    with open(a.out, "w") as f:
        json.dump(truth, f, indent=2, sort_keys=True)
        f.write("\n")
    if a.detail:
        with open(a.detail, "w") as f:
            json.dump(detail, f, indent=1, sort_keys=True)
            f.write("\n")
    if problems:
        for p in problems:
            say("PROBLEM:", p)
        raise SystemExit("the workload did not behave as designed; truth.json is not trustworthy")


# ------------------------------------------------------------------ cross-check against the log
def cmd_crosscheck(a):
    with open(a.truth) as f:
        t = json.load(f)
    detail = None
    dpath = a.detail or os.path.join(os.path.dirname(a.truth), "truth-detail.json")
    if os.path.exists(dpath):
        with open(dpath) as f:
            detail = json.load(f)
    prog_re = re.compile(r"^\S+\s+\d+\s+[\d:]+\s+\S+\s+([^\[:]+)(?:\[\d+\])?:\s(.*)$")
    c = collections.Counter()
    by_ip = collections.defaultdict(lambda: collections.Counter())
    with open(a.log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = prog_re.match(line.rstrip("\n"))
            if not m:
                c["unparsed"] += 1
                continue
            prog, msg = m.groups()
            if prog.startswith("postfix"):
                if "status=deferred" in msg:
                    c["deferred"] += 1
                if "status=sent" in msg:
                    c["sent"] += 1
                if "status=bounced" in msg:
                    c["bounced"] += 1
                if "status=expired, returned to sender" in msg:
                    c["expired_msgs"] += 1
                if re.match(r"(NOQUEUE|[0-9A-Za-z]+): reject: ", msg):
                    c["reject"] += 1
                if prog.endswith("/smtpd") and msg.startswith("connect from "):
                    c["connect"] += 1
                if prog.endswith("/smtpd") and re.match(r"[0-9A-Za-z]+: client=", msg):
                    c["queued"] += 1
                if prog.endswith("/pickup") and re.match(r"[0-9A-Za-z]+: uid=\d+ from=", msg):
                    c["queued"] += 1
                for k, s in (("non_delivery", "sender non-delivery notification:"),
                             ("delay", "sender delay notification:"),
                             ("success", "sender delivery status notification:")):
                    if s in msg:
                        c["notif_" + k] += 1
                sm = re.search(r"\[([\d.]+)\]: SASL \S+ authentication failed", msg)
                if sm:
                    by_ip[sm.group(1)]["smtp"] += 1
            elif prog == "dovecot":
                dm = re.match(r"(imap|pop3|managesieve|submission)-login: .*\(auth failed, (\d+) attempts", msg)
                if dm:
                    ip = re.search(r"rip=([\d.]+)", msg)
                    proto = dm.group(1) if dm.group(1) in ("imap", "pop3") else "other"
                    by_ip[ip.group(1) if ip else "?"][proto] += int(dm.group(2))
    notif_total = sum(t["notifications"].values())
    rows = [
        ("deferrals (status=deferred lines)", t["deferrals"], c["deferred"]),
        ("sent + notifications delivered (status=sent lines)", t["deliveries"]["sent"] + notif_total, c["sent"]),
        ("bounced (status=bounced lines)", t["deliveries"]["bounced"], c["bounced"]),
        ("rejected (reject: lines)", t["rejected"], c["reject"]),
        ("connections (smtpd connect from)", t["connections"], c["connect"]),
        ("messages.queued (smtpd client= + pickup uid= lines)", t["messages"]["queued"], c["queued"]),
        ("notifications.non_delivery", t["notifications"]["non_delivery"], c["notif_non_delivery"]),
        ("notifications.delay", t["notifications"]["delay"], c["notif_delay"]),
        ("notifications.success", t["notifications"]["success"], c["notif_success"]),
    ]
    if detail is not None:
        rows.append(("expired messages (qmgr status=expired lines)", len(detail["expired_messages"]),
                     c["expired_msgs"]))
    log_by_ip = {ip: {k: v[k] for k in ("smtp", "imap", "pop3", "other")} for ip, v in by_ip.items()}
    ok = True
    print("cross-check: truth (from clients) vs plain grep of %s" % a.log)
    for label, tv, lv in rows:
        flag = "ok" if tv == lv else "MISMATCH"
        ok &= tv == lv
        print("  %-55s truth=%-4s log=%-4s %s" % (label, tv, lv, flag))
    tb = t["auth_failures"]["by_ip"]
    flag = "ok" if tb == log_by_ip else "MISMATCH"
    ok &= tb == log_by_ip
    print("  %-55s %s" % ("auth_failures.by_ip", flag))
    if tb != log_by_ip:
        print("    truth: %s\n    log:   %s" % (json.dumps(tb, sort_keys=True), json.dumps(log_by_ip, sort_keys=True)))
    if c["unparsed"]:
        print("  (%d lines without a classic syslog header)" % c["unparsed"])
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--sasl-user", required=True)
    r.add_argument("--sasl-pass", required=True)
    t = sub.add_parser("truth")
    t.add_argument("--work", required=True)
    t.add_argument("--sasl-user", required=True)
    t.add_argument("--sasl-pass", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--detail")
    c = sub.add_parser("crosscheck")
    c.add_argument("--truth", required=True)
    c.add_argument("--detail")
    c.add_argument("--log", required=True)
    a = ap.parse_args()
    {"run": cmd_run, "truth": cmd_truth, "crosscheck": cmd_crosscheck}[a.cmd](a)


if __name__ == "__main__":
    main()
