#!/usr/bin/env python3
"""genlog.py - deterministic generator of large, realistic Postfix + Dovecot syslog files.

Python 3 standard library only.  Same arguments + same --seed => byte-identical output.

Simulates a busy mail server: postscreen/dnsblog/tlsproxy noise, smtpd (port 25, submission,
re-injection after an amavis content filter on 127.0.0.1:10024 -> 10025), cleanup, qmgr,
smtp/lmtp/virtual/pipe/local deliveries, deferrals with Postfix-like back-off and retries,
bounces with non-delivery notifications, expirations, delay/success notifications, NOQUEUE
rejects, milter/header rejects, SASL brute force, Dovecot logins and auth failures, anvil
statistics and some amavis/opendkim "other" lines.  Flows interleave like a real server and
timestamps increase monotonically.

--emit-truth FILE writes the counts the generator produced, in the shape of DESIGN.md's
`postlens stats --json` (plus extra keys: "pflogsumm" = the figures pflogsumm's summary should
print for this file, "generator" = parameters).  Counting follows DESIGN.md's definitions.

Examples:
  benches/genlog.py --lines 1000000 --seed 1 -o /tmp/mail.log --emit-truth /tmp/truth.json
  benches/genlog.py --lines 200000 --format rfc3339 --long-queue-ids > mail.log
"""
import argparse
import base64
import bisect
import datetime
import heapq
import itertools
import json
import math
import os
import random
import sys
import time

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# ---------------------------------------------------------------------------------------------
# Static vocabulary (all invented / documentation ranges; no real users)
FIRST = ("anna ben carla david eva frank gina hans ines jan karin lars mia nils olga paul "
         "quinn rita sven tina uwe vera walter xenia yusuf zoe alex bianca chris dora emil "
         "fiona georg hanna igor julia kai lena max nora oskar petra ralf sara tom ute viktor "
         "wanda jonas lea lukas marie felix emma noah lina elias ida").split()
LAST = ("mueller schmidt schneider fischer weber meyer wagner becker schulz hoffmann koch "
        "richter klein wolf neumann schwarz braun zimmermann krueger hartmann lange werner "
        "krause lehmann koehler herrmann walter maier kaiser fuchs peters lang scholz moeller "
        "weiss jung hahn vogel friedrich keller guenther frank berger winkler roth beck "
        "lorenz baumann franke albrecht").split()
WORDS = ("nord sued ost west blau gruen rot stern berg tal see wald feld haus bau tech data "
         "net web shop mode reise auto bio solar kunst druck medien werk logistik consult "
         "handel markt studio garten sport digital cloud system service partner union "
         "energie praxis kanzlei apotheke bauer hotel cafe kraft licht wasser holz stahl "
         "papier farben technik software").split()
TLDS = ["de", "de", "de", "com", "com", "net", "org", "eu", "at", "ch", "nl", "fr", "io", "co.uk"]
ROLE = ["info", "kontakt", "office", "service", "support", "buchhaltung", "vertrieb", "team",
        "noreply", "newsletter", "rechnung", "bestellung", "news", "hello", "jobs"]

# (domain, mx host, ip prefix, 250-response style)
PROVIDERS = [
    ("gmail.com", "gmail-smtp-in.l.google.com", "142.250.102.", "google"),
    ("googlemail.com", "gmail-smtp-in.l.google.com", "142.251.9.", "google"),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", "104.47.11.", "ms"),
    ("hotmail.com", "hotmail-com.olc.protection.outlook.com", "104.47.18.", "ms"),
    ("yahoo.com", "mta7.am0.yahoodns.net", "67.195.204.", "yahoo"),
    ("gmx.de", "mx00.emig.gmx.net", "212.227.15.", "gmx"),
    ("gmx.net", "mx01.emig.gmx.net", "212.227.17.", "gmx"),
    ("web.de", "mx-ha03.web.de", "212.227.15.", "gmx"),
    ("t-online.de", "mx00.t-online.de", "194.25.134.", "tonline"),
    ("posteo.de", "mx01.posteo.de", "185.67.36.", "postfix"),
    ("mailbox.org", "mxext1.mailbox.org", "80.241.60.", "postfix"),
]
# inbound relays of big providers: (hostname pattern, ip prefix)
PROVIDER_OUT = [
    ("mail-wm1-f%d.google.com", "209.85.128."), ("mail-ej1-f%d.google.com", "209.85.218."),
    ("mout.gmx.net", "212.227.15."), ("mout.web.de", "212.227.17."),
    ("mail-db8eur05on%d.outbound.protection.outlook.com", "40.107.20."),
    ("mailout%d.t-online.de", "194.25.134."), ("mout-p-%d.mailbox.org", "80.241.56."),
    ("sonic%d-22.consmr.mail.ir2.yahoo.com", "77.238.178."), ("mx%d.mailchimp-mail.com", "198.2.130."),
    ("o%d.sendgrid.net", "167.89.115."), ("a%d-12.smtp-out.amazonses.com", "54.240.4."),
]
TLS_IN = [
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
    "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)",
    "TLSv1.3 with cipher TLS_CHACHA20_POLY1305_SHA256 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
]
TLS_OUT_KIND = ["Trusted", "Verified", "Verified", "Untrusted", "Anonymous"]
USER_AGENT_HOST = ["p%s.dip0.t-ipconnect.de", "ip-%s.um21.pools.vodafone-ip.de", "dynamic-%s.adsl.versatel.de",
                   "x%s.dyn.telefonica.de", "unknown", "unknown"]
HELO_BOT = ["ylmf-pc", "User", "WIN-CLJ1B0GQ6JP", "localhost", "127.0.0.1", "windows7", "mail.example.com"]
DNSBLS = [("zen.spamhaus.org", ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.10", "127.0.0.11"]),
          ("zen.spamhaus.org", ["127.0.0.4"]),
          ("b.barracudacentral.org", ["127.0.0.2"]),
          ("bl.spamcop.net", ["127.0.0.2"]),
          ("list.dnswl.org", ["127.0.10.0", "127.0.15.1"])]
DEFER_REMOTE = [
    ("4.7.0", "host {mx}[{ip}] said: 421 4.7.0 [TSS04] Messages from {me} temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)"),
    ("4.2.0", "host {mx}[{ip}] said: 450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see https://postgrey.schweikert.ch/help/{dom}.html (in reply to RCPT TO command)"),
    ("4.2.2", "host {mx}[{ip}] said: 452 4.2.2 The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp (in reply to RCPT TO command)"),
    ("4.4.1", "connect to {mx}[{ip}]:25: Connection timed out"),
    ("4.4.2", "lost connection with {mx}[{ip}] while receiving the initial server greeting"),
    ("4.7.1", "host {mx}[{ip}] said: 451 4.7.1 Service unavailable - try again later (in reply to end of DATA command)"),
    ("4.3.0", "host {mx}[{ip}] said: 451 4.3.0 <{rcpt}>: Temporary lookup failure (in reply to RCPT TO command)"),
]
BOUNCE_REMOTE = [
    ("5.1.1", "host {mx}[{ip}] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)"),
    ("5.1.1", "host {mx}[{ip}] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. For more information, go to 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-a9a1{h}si12.3 - gsmtp (in reply to RCPT TO command)"),
    ("5.7.1", "host {mx}[{ip}] said: 550 5.7.1 Service unavailable, Client host [{me}] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/{me} (AS3130). [DB8EUR05FT012.eop-eur05.prod.protection.outlook.com 2026-10-01T00:00:00.000Z 08DC{h}] (in reply to MAIL FROM command)"),
    ("5.2.2", "host {mx}[{ip}] said: 552 5.2.2 <{rcpt}>: Mailbox full (in reply to RCPT TO command)"),
    ("5.0.0", "host {mx}[{ip}] said: 550 Requested action not taken: mailbox unavailable (in reply to RCPT TO command)"),
]
BOUNCE_NONE = ("5.4.4", "Host or domain name not found. Name service error for name={dom} type=AAAA: Host not found")
DEFER_NONE = ("4.4.3", "Host or domain name not found. Name service error for name={dom} type=MX: Host not found, try again")
REJECTS = [
    ("554 5.7.1 <{rcpt}>: Relay access denied", False),
    ("450 4.7.1 Client host rejected: cannot find your hostname, [{ip}]", False),
    ("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table", True),
    ("450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see https://postgrey.schweikert.ch/help/{dom}.html", True),
    ("554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{ip}", True),
    ("504 5.5.2 <{helo}>: Helo command rejected: need fully-qualified hostname", True),
    ("450 4.1.8 <{sender}>: Sender address rejected: Domain not found", True),
]
AUTH_USERS_BF = ["admin", "info", "test", "user", "postmaster", "webmaster", "office", "sales",
                 "support", "contact", "mail", "backup", "root", "guest", "noreply"]


def fmt_d(x):
    """Postfix-like delay number: 0, 0.01..0.99, 1.2, 12, 440374."""
    if x < 0.01:
        return "0"
    if x < 1:
        s = "%.2f" % x
    elif x < 10:
        s = "%.1f" % x
    else:
        return "%d" % x
    s = s.rstrip("0").rstrip(".")
    return s


_NCMD = {}


def ncmds(counts):
    """number of commands in a disconnect counter string like 'ehlo=2 starttls=1 auth=1'."""
    v = _NCMD.get(counts)
    if v is None:
        v = _NCMD[counts] = sum(int(x.split("=")[1].split("/")[0]) for x in counts.split())
    return v


def parse_duration(s):
    s = s.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if s[-1] in mult:
        return float(s[:-1]) * mult[s[-1]]
    return float(s)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000, help="number of lines (default 1000000)")
    ap.add_argument("--days", type=float, default=7.0, help="spread over this many days (default 7)")
    ap.add_argument("--start", default="2026-10-01", help="first day, YYYY-MM-DD (default 2026-10-01)")
    ap.add_argument("--format", choices=["classic", "rfc3339"], default="classic")
    ap.add_argument("--utc-offset", default="+01:00", help="zone offset written in rfc3339 stamps (default +01:00)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--host", default="mail", help="syslog host name (default mail)")
    ap.add_argument("--long-queue-ids", action="store_true", help="Postfix enable_long_queue_ids=yes style IDs")
    ap.add_argument("--filter-share", type=float, default=0.5,
                    help="share of client messages routed through amavis on 127.0.0.1:10024 (default 0.5)")
    ap.add_argument("--filter-syslog-names", action="store_true",
                    help="log the filter hop as postfix/amavis/smtp and re-injection as postfix/10025/smtpd "
                         "(default: plain postfix/smtp and postfix/smtpd)")
    ap.add_argument("--local-transport", choices=["lmtp", "virtual", "pipe"], default="lmtp")
    ap.add_argument("--queue-lifetime", default="2d", help="maximal_queue_lifetime (default 2d)")
    ap.add_argument("--delay-warning", default="4h", help="delay_warning_time, 0 = off (default 4h)")
    ap.add_argument("--noise", type=float, default=1.0, help="multiplier for non-message traffic (default 1)")
    ap.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    ap.add_argument("--emit-truth", metavar="FILE", help="write the generated counts as JSON")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.lines < 0 or a.days <= 0:
        ap.error("--lines must be >= 0 and --days > 0")
    try:
        start = datetime.date.fromisoformat(a.start)
    except ValueError:
        ap.error("--start must be YYYY-MM-DD")
    t0 = time.time()
    truth = generate(a, start)
    el = time.time() - t0
    if a.emit_truth:
        with open(a.emit_truth, "w") as f:
            json.dump(truth, f, indent=1)
            f.write("\n")
    if not a.quiet:
        sys.stderr.write("genlog: %d lines in %.2f s (%.0f lines/s)\n" % (a.lines, el, a.lines / el if el else 0))


def generate(a, start):
    R = random.Random(a.seed)
    rnd = R.random
    getrandbits = R.getrandbits
    log = math.log
    N = a.lines
    host = a.host
    classic = a.format == "classic"
    tz = a.utc_offset
    lifetime_us = int(parse_duration(a.queue_lifetime) * 1e6)
    dw = parse_duration(a.delay_warning)
    delay_warn_us = int(dw * 1e6) if dw > 0 else 0
    filter_share = a.filter_share
    ltrans = a.local_transport
    noise = a.noise
    ME_IP = "203.0.113.10"
    ME_HOST = "mail.example.org"
    LOCAL_DOMAINS = ["example.org", "example.net", "example-verein.de"]
    hop_name = "postfix/amavis/smtp" if a.filter_syslog_names else "postfix/smtp"
    reinj_name = "postfix/10025/smtpd" if a.filter_syslog_names else "postfix/smtpd"

    # ---------------- header tables ----------------
    hms = ["%02d:%02d:%02d" % (h, m, s) for h in range(24) for m in range(60) for s in range(60)]
    day_cache = {}

    def day_prefix(d):
        dt = start + datetime.timedelta(days=d)
        if classic:
            p = "%s %2d " % (MONTHS[dt.month - 1], dt.day)
        else:
            p = dt.isoformat() + "T"
        day_cache[d] = p
        return p

    def classic_stamp(t):  # for anvil "at Oct  1 12:00:00"
        sec = t // 1000000
        d, s = divmod(sec, 86400)
        dt = start + datetime.timedelta(days=d)
        return "%s %2d %s" % (MONTHS[dt.month - 1], dt.day, hms[s])

    # ---------------- pools ----------------
    def rand_ip_public():
        while True:
            a1 = 1 + int(rnd() * 222)
            if a1 in (10, 127, 100, 169, 172, 192, 198, 203):
                continue
            return "%d.%d.%d.%d" % (a1, int(rnd() * 256), int(rnd() * 256), 1 + int(rnd() * 254))

    def rand_domain():
        w = WORDS
        return "%s%s%s.%s" % (w[int(rnd() * len(w))], "-" if rnd() < 0.3 else "", w[int(rnd() * len(w))],
                              TLDS[int(rnd() * len(TLDS))])

    local_users = []
    for i in range(400):
        f, l = FIRST[int(rnd() * len(FIRST))], LAST[int(rnd() * len(LAST))]
        d = LOCAL_DOMAINS[0] if rnd() < 0.7 else LOCAL_DOMAINS[1 + int(rnd() * 2)]
        local_users.append("%s.%s@%s" % (f, l, d) if rnd() < 0.8 else "%s@%s" % (f, d))
    local_users += ["%s@%s" % (r, LOCAL_DOMAINS[0]) for r in ("info", "kontakt", "buchhaltung", "support", "jobs")]
    n_local = len(local_users)
    # remote domains: providers + many small ones, each with MX host/ip
    remote_domains = []
    for (d, mx, pfx, style) in PROVIDERS:
        remote_domains.append((d, mx, pfx + str(1 + int(rnd() * 250)), style))
    for i in range(3000):
        d = rand_domain()
        style = "postfix" if rnd() < 0.6 else ("exim" if rnd() < 0.5 else "ms")
        mx = ("mail." + d) if rnd() < 0.5 else ("mx%d.%s" % (1 + int(rnd() * 2), d))
        if style == "ms":
            mx = d.replace(".", "-") + ".mail.protection.outlook.com"
        remote_domains.append((d, mx, rand_ip_public(), style))
    n_provider = len(PROVIDERS)
    n_rdom = len(remote_domains)
    remote_addrs = []  # (address, domain index)
    for i in range(30000):
        di = int(rnd() * n_provider) if rnd() < 0.45 else n_provider + int(rnd() * (n_rdom - n_provider))
        d = remote_domains[di][0]
        r = rnd()
        if r < 0.55:
            lp = "%s.%s" % (FIRST[int(rnd() * len(FIRST))], LAST[int(rnd() * len(LAST))])
        elif r < 0.8:
            lp = "%s%d" % (FIRST[int(rnd() * len(FIRST))], int(rnd() * 99))
        else:
            lp = ROLE[int(rnd() * len(ROLE))]
        remote_addrs.append((lp + "@" + d, di))
    n_raddr = len(remote_addrs)
    # sending MTAs for inbound mail: (name, ip)
    inbound_clients = []
    for (pat, pfx) in PROVIDER_OUT:
        for k in range(20):
            n = int(rnd() * 200)
            inbound_clients.append((pat % n if "%d" in pat else pat, pfx + str(n + 1)))
    for i in range(1500):
        d = remote_domains[n_provider + int(rnd() * (n_rdom - n_provider))]
        inbound_clients.append((("mail." if rnd() < 0.6 else "smtp.") + d[0], rand_ip_public()))
    n_inc = len(inbound_clients)
    # submission clients per local user: (hostname, ip)
    user_clients = []
    for i in range(n_local):
        ip = rand_ip_public()
        pat = USER_AGENT_HOST[int(rnd() * len(USER_AGENT_HOST))]
        name = "unknown" if pat == "unknown" else pat % ip.replace(".", "-")
        user_clients.append((name, ip))
    # attackers: heavy-tailed
    attackers = [rand_ip_public() for i in range(4000)]
    n_att = len(attackers)
    bots = [rand_ip_public() for i in range(20000)]
    n_bots = len(bots)
    scanner_names = ["scanner-%02d.ch1.censys-scanner.com", "worker-%02d.sfj.corp.censys.io",
                     "%02d.scan.shadowserver.org", "unknown", "unknown", "unknown"]

    def pick_skew(n, p=2.2):  # heavy head
        return int(n * (rnd() ** p))

    def session_id():
        return base64.b64encode(getrandbits(96).to_bytes(12, "little")).decode()

    # precomputed quick delay strings for immediate deliveries
    def mk_delays(lo_net):
        a_ = rnd() * 0.3
        b_ = rnd() * 0.05
        c_ = (rnd() * 0.8 if lo_net else 0.02 + rnd() * 1.5)
        d_ = rnd() * 0.4 + (0.01 if lo_net else 0.05)
        return "delay=%s, delays=%s/%s/%s/%s" % (fmt_d(a_ + b_ + c_ + d_), fmt_d(a_), fmt_d(b_), fmt_d(c_), fmt_d(d_))
    DL_LOCAL = [mk_delays(True) for i in range(512)]
    DL_REMOTE = [mk_delays(False) for i in range(512)]

    # ---------------- pids ----------------
    pidc = [1000 + int(rnd() * 5000)]

    def newpid():
        p = pidc[0] + 1 + int(rnd() * 6)
        if p > 4194000:
            p = 300
        pidc[0] = p
        return p

    class Pool:
        __slots__ = ("pids", "n", "churn")

        def __init__(self, n, churn):
            self.pids = [newpid() for _ in range(n)]
            self.n = n
            self.churn = churn

        def get(self):
            i = int(rnd() * self.n)
            if rnd() < self.churn:
                self.pids[i] = newpid()
            return self.pids[i]

    P_cleanup = Pool(6, 0.01)
    P_smtp = Pool(12, 0.01)
    P_lmtp = Pool(4, 0.01)
    P_local = Pool(2, 0.02)
    P_bounce = Pool(2, 0.05)
    P_error = Pool(2, 0.05)
    P_dnsblog = Pool(3, 0.01)
    P_tlsproxy = Pool(1, 0.001)
    P_amavis = Pool(4, 0.002)
    P_dovelmtp = Pool(4, 0.02)
    qmgr_pid = newpid()
    postscreen_pid = newpid()
    pickup_pid = newpid()
    opendkim_pid = 600 + int(rnd() * 200)
    auth_worker_pid = newpid()
    amavis_child = {}

    # smtpd: a process serves one connection at a time; idle processes are reused
    smtpd_free = []
    smtpd_busy = []  # heap of (free_at, pid)

    def smtpd_pid(t_from, t_to):
        while smtpd_busy and smtpd_busy[0][0] <= t_from:
            _, p = heapq.heappop(smtpd_busy)
            if rnd() < 0.97:
                smtpd_free.append(p)
        p = smtpd_free.pop() if smtpd_free else newpid()
        heapq.heappush(smtpd_busy, (t_to, p))
        return p

    # ---------------- queue ids ----------------
    qn = [int(rnd() * 1000)]
    B52 = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjkmnpqrstvwxy"  # 50 chars, no vowels, no 'z'
    long_ids = a.long_queue_ids
    epoch_base = int(datetime.datetime(start.year, start.month, start.day).timestamp())

    def qid(t):
        qn[0] += 1
        x = (qn[0] * 0x2F1C3A5) & 0x3FFFFFF  # bijection on 26 bits -> unique suffix
        if not long_ids:
            return "%05X%X" % (t % 1000000, x)
        # long: seconds (6) + usec (4) + 'z' + inode, base-50 digits, most significant first
        s = epoch_base + t // 1000000
        out = []
        for _ in range(6):
            s, r = divmod(s, 50)
            out.append(B52[r])
        out.reverse()
        u = t % 1000000
        us = []
        for _ in range(4):
            u, r = divmod(u, 50)
            us.append(B52[r])
        us.reverse()
        out += us
        out.append("z")
        y = x
        while True:
            y, r = divmod(y, 50)
            out.append(B52[r])
            if not y:
                break
        return "".join(out)

    # ---------------- event heap ----------------
    heap = []
    cnt = itertools.count()
    push = heapq.heappush

    # op codes
    OP_CONN, OP_REJ, OP_SASL, OP_DOVE, OP_QUEUED, OP_DEFER, OP_FINAL, OP_EXPIRE, OP_NOTIFY, OP_PFRCVD, OP_PFSENT = range(11)
    S_SENT, S_BOUNCED, S_EXPIRED = 0, 1, 2
    OUT, IN = 0, 1

    # delivery counters [dir][outcome]; pending[dir]
    dcount = [[0, 0, 0], [0, 0, 0]]
    pending = [0, 0]
    C = {"deferrals": 0, "deferred_then_sent": 0, "queued": 0, "with_deferral": 0, "rejected": 0,
         "connections": 0, "nd": 0, "delay": 0, "success": 0, "pf_rcvd": 0, "pf_sent": 0, "pf_bounced": 0}
    byip = {}

    def P(t, body, op=None):
        push(heap, (t, next(cnt), body, op))

    # recipient record: [dir, ndefer, state(0 new,1 pending,2 final), msg]; msg = [has_deferral]

    # ---------------- message flow helpers ----------------
    def msgid(t, dom):
        r = rnd()
        if r < 0.4:
            return "<%016x%08x@%s>" % (getrandbits(64), getrandbits(32), dom)
        if r < 0.6:
            return "<CA+%s@mail.gmail.com>" % base64.b64encode(getrandbits(192).to_bytes(24, "little")).decode().replace("/", "_")
        if r < 0.8:
            return "<%d.%05d.%d@%s>" % (epoch_base + t // 1000000, int(rnd() * 99999), getrandbits(24), dom)
        return "<%08x-%04x-%04x-%04x-%012x@%s>" % (getrandbits(32), getrandbits(16), getrandbits(16),
                                                   getrandbits(16), getrandbits(48), dom)

    def ok_response(style, q_remote, rcpt, mid):
        if style == "google":
            return "250 2.0.0 OK  %d %s.%d - gsmtp" % (1790000000 + int(rnd() * 9999999),
                                                     "a640c23a62f3a-a9a1%06xsi%d" % (getrandbits(24), int(rnd() * 99)), int(rnd() * 999))
        if style == "ms":
            return "250 2.6.0 %s [InternalId=%d, Hostname=DB9PR05MB%d.eurprd05.prod.outlook.com] %d bytes in 0.%03d, %d.%03d KB/sec Queued mail for delivery" % (
                mid, getrandbits(40), int(rnd() * 9999), 2000 + int(rnd() * 90000), int(rnd() * 999), int(rnd() * 900), int(rnd() * 999))
        if style == "gmx":
            return "250 Requested mail action okay, completed: id=1M%s-1t%s" % (
                base64.b64encode(getrandbits(48).to_bytes(6, "little")).decode()[:6], base64.b64encode(getrandbits(48).to_bytes(6, "little")).decode()[:6])
        if style == "yahoo":
            return "250 ok dirdel"
        if style == "tonline":
            return "250 2.0.0 Message accepted as 1t%07x-0Xyz%d" % (getrandbits(28), int(rnd() * 99))
        if style == "exim":
            return "250 OK id=1t%s-00%s-Ab" % (base64.b64encode(getrandbits(36).to_bytes(5, "little")).decode()[:6], "%04X" % getrandbits(16))
        return "250 2.0.0 Ok: queued as %s" % q_remote  # remote Postfix: NOT a local content filter

    def remote_qid():
        x = getrandbits(40)
        return "4%s%s" % (B52[x % 50], base64.b64encode(x.to_bytes(5, "little")).decode().replace("/", "x").replace("+", "Z")[:9])

    def local_dest(addr):
        if addr.startswith("root@"):
            return "postfix/local", "relay=local", "delivered to mailbox"
        if ltrans == "lmtp":
            return "postfix/lmtp", "relay=%s[private/dovecot-lmtp]" % ME_HOST, "250 2.0.0 <%s> %s Saved" % (addr, session_id()[:22])
        if ltrans == "virtual":
            return "postfix/virtual", "relay=virtual", "delivered to maildir"
        return "postfix/pipe", "relay=dovecot", "delivered via dovecot service"

    def deliver(t, q, sender, rcpts, msg, size, mid, nrcpt_str, arrival, on_done):
        """Schedules delivery attempts for queue id q, starting at t. rcpts = list of
        (addr, is_local, plan, rec) where plan = (n_deferrals, final) final in sent|bounced|expired.
        rec is None for notifications (not counted). Returns (last time, lines pushed)."""
        nl = 0
        # group attempts: first attempt for all; retries for those with deferrals
        attempt_t = t
        backoff = 300e6 * (0.9 + rnd() * 0.4)
        k = 0
        todo = list(rcpts)
        bounced_any = False
        expired_recs = None
        delay_warned = False
        tls_done = set()
        while todo:
            if k > 0:
                # retry: qmgr brings the message back
                P(attempt_t, "postfix/qmgr[%d]: %s: from=<%s>, size=%d, %s (queue active)" % (qmgr_pid, q, sender, size, nrcpt_str))
                nl += 1
                attempt_t += int(50000 + rnd() * 400000)
            expire_now = (k > 0 and attempt_t - arrival >= lifetime_us)
            nxt = []
            for item in todo:
                addr, is_local, plan, rec = item
                ndef, final = plan
                at = attempt_t + int(rnd() * 300000)
                if is_local:
                    name, relay, okmsg = local_dest(addr)
                    dpid = (P_lmtp if name == "postfix/lmtp" else P_local).get()
                    lmtp = name == "postfix/lmtp"
                else:
                    di = item_dom(addr)
                    dom, mx, ip, style = remote_domains[di]
                    name = "postfix/smtp"
                    dpid = P_smtp.get()
                    relay = "relay=%s[%s]:25" % (mx, ip)
                    lmtp = False
                delay_s = (at - arrival) / 1e6
                if k == 0 and delay_s < 5:
                    dl = (DL_LOCAL if is_local else DL_REMOTE)[int(rnd() * 512)]
                else:
                    qd = max(0.0, delay_s - 1.3)
                    dl = "delay=%s, delays=%s/%s/%s/%s" % (fmt_d(delay_s), fmt_d(qd), fmt_d(rnd() * 0.05), fmt_d(rnd()), fmt_d(rnd() * 0.3))
                if k < ndef or expire_now:
                    # deferral
                    if is_local:
                        if lmtp:
                            code, why = "4.2.0", "host %s[private/dovecot-lmtp] said: 451 4.2.0 <%s> Temporary failure: mailbox is locked (in reply to end of DATA command)" % (ME_HOST, addr)
                            if rnd() < 0.3:
                                code, why = "4.4.2", "lost connection with %s[private/dovecot-lmtp] while receiving the initial server greeting" % ME_HOST
                        else:
                            code, why = "4.2.0", "temporary failure. Command output: lda: Error: Mailbox is locked"
                        body = "%s[%d]: %s: to=<%s>, %s, %s, dsn=%s, status=deferred (%s)" % (name, dpid, q, addr, relay, dl, code, why)
                        op = (OP_DEFER, rec, IN) if rec is not None else None
                    else:
                        r = rnd()
                        if k > 1 and r < 0.2:
                            body = "postfix/error[%d]: %s: to=<%s>, relay=none, %s, dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to %s[%s]:25: Connection timed out)" % (
                                P_error.get(), q, addr, dl, mx, ip)
                        elif r < 0.08:
                            body = "postfix/smtp[%d]: %s: to=<%s>, relay=none, %s, dsn=%s, status=deferred (%s)" % (dpid, q, addr, dl, DEFER_NONE[0], DEFER_NONE[1].format(dom=dom))
                        else:
                            code, tmpl = DEFER_REMOTE[(di + k // 3) % len(DEFER_REMOTE) if rnd() < 0.8 else int(rnd() * len(DEFER_REMOTE))]
                            why = tmpl.format(mx=mx, ip=ip, me=ME_IP, rcpt=addr, dom=dom)
                            rl = "none" if why.startswith("connect to") else "%s[%s]:25" % (mx, ip)
                            body = "postfix/smtp[%d]: %s: to=<%s>, relay=%s, %s, dsn=%s, status=deferred (%s)" % (dpid, q, addr, rl, dl, code, why)
                        op = (OP_DEFER, rec, OUT) if rec is not None else None
                    P(at, body, op)
                    nl += 1
                    nxt.append(item)
                    continue
                # final attempt
                if final == "sent":
                    if is_local:
                        body = "%s[%d]: %s: to=<%s>, %s, %s, dsn=2.0.0, status=sent (%s)" % (name, dpid, q, addr, relay, dl, okmsg)
                        if lmtp and rnd() < 0.5:
                            lp = P_dovelmtp.get()
                            P(at - 2000, "dovecot: lmtp(%d): Connect from local" % lp)
                            P(at - 1000, "dovecot: lmtp(%s)<%d><%s>: msgid=%s: saved mail to INBOX" % (addr, lp, session_id()[:22], mid))
                            P(at + 1500, "dovecot: lmtp(%d): Disconnect from local: Client has quit the connection (state=READY)" % lp)
                            nl += 3
                    else:
                        if dom not in tls_done and rnd() < 0.85:
                            tls_done.add(dom)
                            P(at - 3000, "postfix/smtp[%d]: %s TLS connection established to %s[%s]:25: %s" % (
                                dpid, TLS_OUT_KIND[int(rnd() * 5)], mx, ip, TLS_IN[int(rnd() * 6)]))
                            nl += 1
                        body = "postfix/smtp[%d]: %s: to=<%s>, %s, %s, dsn=2.0.0, status=sent (%s)" % (
                            dpid, q, addr, relay, dl, ok_response(style, remote_qid(), addr, mid))
                    op = (OP_FINAL, rec, S_SENT, IN if is_local else OUT) if rec is not None else (OP_PFSENT,)
                else:  # bounced
                    bounced_any = True
                    if is_local:
                        if not lmtp:
                            code, why = "5.2.2", "maildir delivery failed: Disk quota exceeded" if name != "postfix/pipe" else "Command died with status 75: \"/usr/lib/dovecot/deliver\". Command output: Quota exceeded (mailbox for user is full)"
                        elif rnd() < 0.5:
                            code, why = "5.1.1", "host %s[private/dovecot-lmtp] said: 550 5.1.1 <%s> User doesn't exist: %s (in reply to RCPT TO command)" % (ME_HOST, addr, addr)
                        else:
                            code, why = "5.2.2", "host %s[private/dovecot-lmtp] said: 552 5.2.2 <%s> Quota exceeded (mailbox for user is full) (in reply to end of DATA command)" % (ME_HOST, addr)
                        body = "%s[%d]: %s: to=<%s>, %s, %s, dsn=%s, status=bounced (%s)" % (name, dpid, q, addr, relay, dl, code, why)
                    else:
                        if rnd() < 0.15:
                            code, why = BOUNCE_NONE[0], BOUNCE_NONE[1].format(dom=dom)
                            body = "postfix/smtp[%d]: %s: to=<%s>, relay=none, %s, dsn=%s, status=bounced (%s)" % (dpid, q, addr, dl, code, why)
                        else:
                            code, tmpl = BOUNCE_REMOTE[int(rnd() * len(BOUNCE_REMOTE))]
                            why = tmpl.format(mx=mx, ip=ip, me=ME_IP, rcpt=addr, h="%06x" % getrandbits(24))
                            body = "postfix/smtp[%d]: %s: to=<%s>, %s, %s, dsn=%s, status=bounced (%s)" % (dpid, q, addr, relay, dl, code, why)
                    op = (OP_FINAL, rec, S_BOUNCED, IN if is_local else OUT) if rec is not None else None
                P(at, body, op)
                nl += 1
            attempt_t += 400000
            if expire_now and nxt:
                expired_recs = [it[3] for it in nxt if it[3] is not None]
                P(attempt_t, "postfix/qmgr[%d]: %s: from=<%s>, status=expired, returned to sender" % (qmgr_pid, q, sender),
                  (OP_EXPIRE, expired_recs))
                nl += 1
                attempt_t += 20000
                nxt = []
            todo = nxt
            if not todo:
                break
            # delay warning
            if delay_warn_us and not delay_warned and sender and rec_is_counted(todo) and attempt_t - arrival >= delay_warn_us:
                delay_warned = True
                attempt_t, n2 = notification(attempt_t, q, sender, "delay")
                nl += n2
            # next retry time
            k += 1
            attempt_t = max(attempt_t + int(backoff), attempt_t + 1000)
            backoff = min(backoff * 2, 4000e6) * (0.95 + rnd() * 0.1)
            if k > 1000:
                break
        # after all recipients are final
        if (bounced_any or expired_recs) and sender:
            attempt_t, n2 = notification(attempt_t + 30000, q, sender, "non_delivery")
            nl += n2
        elif on_done == "success":
            attempt_t, n2 = notification(attempt_t + 30000, q, sender, "success")
            nl += n2
        P(attempt_t + 5000, "postfix/qmgr[%d]: %s: removed" % (qmgr_pid, q))
        return attempt_t + 5000, nl + 1

    def rec_is_counted(todo):
        return todo[0][3] is not None

    addr_dom = {}

    def item_dom(addr):
        return addr_dom[addr]

    for (ad, di) in remote_addrs:
        addr_dom[ad] = di

    KIND_TEXT = {"non_delivery": "sender non-delivery notification", "delay": "sender delay notification",
                 "success": "sender delivery status notification"}
    KIND_OP = {"non_delivery": (OP_NOTIFY, "nd"), "delay": (OP_NOTIFY, "delay"), "success": (OP_NOTIFY, "success")}

    def notification(t, q, sender, kind):
        """bounce(8) creates a notice to `sender` about message q. Returns (time, lines)."""
        nq = qid(t)
        bp = P_bounce.get()
        nmid = "<%d%06d.%s@%s>" % (epoch_base + t // 1000000, t % 1000000, nq, ME_HOST)
        P(t, "postfix/cleanup[%d]: %s: message-id=%s" % (P_cleanup.get(), nq, nmid))
        t += 1500
        P(t, "postfix/qmgr[%d]: %s: from=<>, size=%d, nrcpt=1 (queue active)" % (qmgr_pid, nq, 2500 + int(rnd() * 6000)))
        t += 800
        P(t, "postfix/bounce[%d]: %s: %s: %s" % (bp, q, KIND_TEXT[kind], nq), KIND_OP[kind])
        t += 1000
        sd = sender.split("@")[-1]
        is_local = sd in LOCAL_DOMAINS or sd == ME_HOST or "@" not in sender
        if not is_local and sender not in addr_dom:
            addr_dom[sender] = n_provider + int(rnd() * (n_rdom - n_provider))
        end, n = deliver(t + 20000, nq, "", [(sender, is_local, (0, "sent"), None)], None, 3000, nmid, "nrcpt=1", t, None)
        return t, n + 3

    def plan_remote():
        r = rnd()
        if r < 0.915:
            return (0, "sent")
        if r < 0.955:
            return (1 + pick_skew(6, 1.5), "sent")
        if r < 0.985:
            return (0, "bounced")
        if r < 0.992:
            return (1 + int(rnd() * 4), "bounced")
        return (10 ** 6, "expired")

    def plan_local():
        r = rnd()
        if r < 0.988:
            return (0, "sent")
        if r < 0.996:
            return (1 + int(rnd() * 2), "sent")
        return (0, "bounced")

    def filter_hop(t, q1, sender, rcpts_addrs, size, mid, client_ip, client_ip_port, inbound):
        """amavis hop: re-injection of q2 via smtpd on 10025 and the hop status lines. Returns (t, q2, lines)."""
        p = smtpd_pid(t, t + 900000)
        nl = 0
        t += int(300000 + rnd() * 3000000)  # scanning time
        P(t, "%s[%d]: connect from localhost[127.0.0.1]" % (reinj_name, p), (OP_CONN,))
        t += 3000
        q2 = qid(t)
        P(t, "%s[%d]: %s: client=localhost[127.0.0.1]" % (reinj_name, p, q2), (OP_PFRCVD,) if not a.filter_syslog_names else None)
        t += 2000
        P(t, "postfix/cleanup[%d]: %s: message-id=%s" % (P_cleanup.get(), q2, mid))
        t += 2000
        size2 = size + 600 + int(rnd() * 1400)
        P(t, "postfix/qmgr[%d]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)" % (qmgr_pid, q2, sender, size2, len(rcpts_addrs)))
        t += 1000
        nr = len(rcpts_addrs)
        P(t, "%s[%d]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=%d data=1 quit=1 commands=%d" % (reinj_name, p, nr, 4 + nr))
        t += 1000
        ap_ = P_amavis.get()
        ac = amavis_child.get(ap_, 0) + 1
        amavis_child[ap_] = ac
        hits = "%.3f" % (rnd() * 6 - 2) if rnd() < 0.9 else "-"
        P(t, "amavis[%d]: (%05d-%02d) Passed CLEAN {%s}, [%s]:%s [%s] <%s> -> %s, Queue-ID: %s, Message-ID: %s, mail_id: %s, Hits: %s, size: %d, queued_as: %s, %d ms" % (
            ap_, ap_ % 100000, ac, "RelayedInbound" if inbound else "RelayedOutbound", client_ip, client_ip_port, client_ip, sender,
            ",".join("<%s>" % x for x in rcpts_addrs), q1, mid, base64.b64encode(getrandbits(72).to_bytes(9, "little")).decode().replace("/", "-"),
            hits, size, q2, 200 + int(rnd() * 4000)))
        t += 1000
        sp = P_smtp.get()
        for ad in rcpts_addrs:
            P(t, "%s[%d]: %s: to=<%s>, relay=127.0.0.1[127.0.0.1]:10024, %s, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as %s)" % (
                hop_name, sp, q1, ad, DL_LOCAL[int(rnd() * 512)], q2), (OP_PFSENT,))
            t += 200
        P(t + 2000, "postfix/qmgr[%d]: %s: removed" % (qmgr_pid, q1))
        return t + 5000, q2, nl + 9 + nr

    def message(t, kind):
        """A client message: kind in in|sub|pickup|bulk. Returns lines pushed."""
        nl = 0
        arrival = t
        size = int(800 + (rnd() ** 3) * 400000)
        if kind == "in":
            sender, sdi = remote_addrs[pick_skew(n_raddr, 1.6)]
            cname, cip = inbound_clients[pick_skew(n_inc, 1.8)]
            k = 1 if rnd() < 0.82 else (2 if rnd() < 0.6 else 3 + int(rnd() * 4))
            rcpts = [(local_users[pick_skew(n_local, 1.5)], True) for _ in range(k)]
            port = 1024 + int(rnd() * 64000)
            P(t, "postfix/postscreen[%d]: CONNECT from [%s]:%d to [%s]:25" % (postscreen_pid, cip, port, ME_IP))
            t += 1000 + int(rnd() * 5000)
            if rnd() < 0.1:
                P(t, "postfix/dnsblog[%d]: addr %s listed by domain list.dnswl.org as 127.0.%d.%d" % (P_dnsblog.get(), cip, int(rnd() * 20), int(rnd() * 3)))
                nl += 1
            P(t, "postfix/postscreen[%d]: PASS OLD [%s]:%d" % (postscreen_pid, cip, port) if rnd() < 0.95 else
              "postfix/postscreen[%d]: PASS NEW [%s]:%d" % (postscreen_pid, cip, port))
            nl += 2
            daemon = "postfix/smtpd"
            sasl = ""
            helo_ehlo = "ehlo=2 starttls=1" if rnd() < 0.8 else "ehlo=1"
            src = (cname, cip)
        elif kind == "pickup":
            sender = "root@" + ME_HOST
            rcpts = [("root@" + ME_HOST, True)] if rnd() < 0.6 else [(remote_addrs[int(rnd() * 50)][0], False)]
            q = qid(t)
            P(t, "postfix/pickup[%d]: %s: uid=0 from=<root>" % (pickup_pid, q), (OP_PFRCVD,))
            nl += 1
            daemon = None
        else:
            ui = pick_skew(n_local, 1.5)
            sender = local_users[ui]
            cname, cip = user_clients[ui]
            if rnd() < 0.03:
                cip = rand_ip_public()
            if kind == "bulk":
                k = 10 + int(rnd() * 60)
                rcpts = [(remote_addrs[int(rnd() * n_raddr)][0], False) for _ in range(k)]
            else:
                k = 1 if rnd() < 0.75 else (2 if rnd() < 0.5 else 3 + int(rnd() * 5))
                rcpts = []
                for _ in range(k):
                    if rnd() < 0.15:
                        rcpts.append((local_users[int(rnd() * n_local)], True))
                    else:
                        rcpts.append((remote_addrs[pick_skew(n_raddr, 1.4)][0], False))
            daemon = "postfix/submission/smtpd" if rnd() < 0.85 else "postfix/smtps/smtpd"
            sasl = ", sasl_method=%s, sasl_username=%s" % ("PLAIN" if rnd() < 0.7 else "LOGIN", sender)
            helo_ehlo = "ehlo=2 starttls=1 auth=1" if daemon == "postfix/submission/smtpd" else "ehlo=1 auth=1"
            src = (cname, cip)
        # dedupe recipients (Postfix keeps duplicates out)
        seen = set()
        rr = []
        for ad, loc in rcpts:
            if ad not in seen:
                seen.add(ad)
                rr.append((ad, loc))
        rcpts = rr
        nr = len(rcpts)
        sdom = sender.split("@")[1]
        mid = msgid(t, sdom)
        if daemon is not None:
            cname, cip = src
            dur = 400000 + int(rnd() * 3000000) + nr * 100000
            p = smtpd_pid(t, t + dur)
            P(t, "%s[%d]: connect from %s[%s]" % (daemon, p, cname, cip), (OP_CONN,))
            t += 20000 + int(rnd() * 200000)
            if helo_ehlo.startswith("ehlo=2") or daemon.endswith("smtps/smtpd"):
                P(t, "%s[%d]: Anonymous TLS connection established from %s[%s]: %s" % (daemon, p, cname, cip, TLS_IN[int(rnd() * 6)]))
                nl += 1
                t += 20000 + int(rnd() * 100000)
            q = qid(t)
            P(t, "%s[%d]: %s: client=%s[%s]%s" % (daemon, p, q, cname, cip, sasl), (OP_PFRCVD,))
            nl += 2
            t += 50000 + int(rnd() * 300000)
            # milter / header-check reject of the whole message (inbound only)
            if kind == "in" and rnd() < 0.02:
                P(t, "postfix/cleanup[%d]: %s: message-id=%s" % (P_cleanup.get(), q, mid))
                t += 100000 + int(rnd() * 2000000)
                if rnd() < 0.5:
                    P(t, "postfix/cleanup[%d]: %s: milter-reject: END-OF-MESSAGE from %s[%s]: 5.7.1 Spam message rejected; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                        P_cleanup.get(), q, cname, cip, sender, rcpts[0][0], cname), (OP_REJ,))
                else:
                    P(t, "postfix/cleanup[%d]: %s: reject: header Subject: =?UTF-8?B?R2V3aW5uc3BpZWw=?= from %s[%s]; from=<%s> to=<%s> proto=ESMTP helo=<%s>: 5.7.1 Message content rejected" % (
                        P_cleanup.get(), q, cname, cip, sender, rcpts[0][0], cname), (OP_REJ,))
                t += 5000
                P(t, "%s[%d]: disconnect from %s[%s] %s mail=1 rcpt=%d data=0/1 quit=1 commands=%d/%d" % (
                    daemon, p, cname, cip, helo_ehlo, nr, ncmds(helo_ehlo) + 2 + nr, ncmds(helo_ehlo) + 3 + nr))
                return nl + 3
            # a rejected extra recipient inside an accepted transaction
            extra_rej = kind == "in" and rnd() < 0.03
            if extra_rej:
                bad = "%s@%s" % (FIRST[int(rnd() * len(FIRST))] + "x", LOCAL_DOMAINS[0])
                P(t - 20000, "%s[%d]: %s: reject: RCPT from %s[%s]: 550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                    daemon, p, q, cname, cip, bad, sender, bad, cname), (OP_REJ,))
                nl += 1
        P(t, "postfix/cleanup[%d]: %s: message-id=%s" % (P_cleanup.get(), q, mid))
        nl += 1
        t += 2000 + int(rnd() * 20000)
        if rnd() < 0.5:
            if kind in ("sub", "bulk"):
                P(t, "opendkim[%d]: %s: DKIM-Signature field added (s=mail, d=%s)" % (opendkim_pid, q, sdom))
            else:
                P(t, "opendkim[%d]: %s: %s" % (opendkim_pid, q, "DKIM verification successful" if rnd() < 0.7 else "s=selector1 d=%s SSL" % sdom))
            nl += 1
            t += 1000
        recs = []
        msg = [0]
        for ad, loc in rcpts:
            recs.append([OUT, 0, 0, msg])
        P(t, "postfix/qmgr[%d]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)" % (qmgr_pid, q, sender, size, nr), (OP_QUEUED, recs))
        nl += 1
        t += 2000
        if daemon is not None:
            ncmd = ncmds(helo_ehlo) + 3 + nr
            if extra_rej:
                tail = "rcpt=%d/%d data=1 quit=1 commands=%d/%d" % (nr, nr + 1, ncmd, ncmd + 1)
            else:
                tail = "rcpt=%d data=1 quit=1 commands=%d" % (nr, ncmd)
            P(t + 30000, "%s[%d]: disconnect from %s[%s] %s mail=1 %s" % (daemon, p, cname, cip, helo_ehlo, tail))
            nl += 1
        # content filter
        if kind != "pickup" and rnd() < filter_share:
            t, q, n2 = filter_hop(t, q, sender, [ad for ad, _ in rcpts], size, mid, src[1], 1024 + int(rnd() * 64000), kind == "in")
            nl += n2
            size = size + 1000
        items = []
        for (ad, loc), rec in zip(rcpts, recs):
            items.append((ad, loc, plan_local() if loc else plan_remote(), rec))
        succ = "success" if kind == "sub" and rnd() < 0.002 else None
        end, n2 = deliver(t + 20000 + int(rnd() * 200000), q, sender, items, msg, size, mid, "nrcpt=%d" % nr, arrival, succ)
        return nl + n2

    # ---------------- noise episodes ----------------
    def ep_bot(t):
        ip = bots[pick_skew(n_bots, 1.3)]
        port = 1024 + int(rnd() * 64000)
        P(t, "postfix/postscreen[%d]: CONNECT from [%s]:%d to [%s]:25" % (postscreen_pid, ip, port, ME_IP))
        n = 1
        t += 1000 + int(rnd() * 3000)
        listed = rnd() < 0.75
        if listed:
            for (zone, answers) in DNSBLS[:2 + int(rnd() * 3)]:
                if zone == "list.dnswl.org":
                    continue
                if rnd() < 0.8:
                    P(t, "postfix/dnsblog[%d]: addr %s listed by domain %s as %s" % (P_dnsblog.get(), ip, zone, answers[int(rnd() * len(answers))]))
                    n += 1
                    t += 500
        r = rnd()
        if r < 0.35:
            t += int(rnd() * 1000000)
            P(t, "postfix/postscreen[%d]: PREGREET %d after %s from [%s]:%d: EHLO %s\\r\\n" % (postscreen_pid, 11 + int(rnd() * 10), fmt_d(rnd() * 0.5), ip, port, HELO_BOT[int(rnd() * len(HELO_BOT))]))
            n += 1
        if listed:
            t += 500000 + int(rnd() * 5000000)
            P(t, "postfix/postscreen[%d]: DNSBL rank %d for [%s]:%d" % (postscreen_pid, 2 + int(rnd() * 8), ip, port))
            n += 1
        r = rnd()
        t += 100000 + int(rnd() * 5000000)
        if listed and r < 0.25:
            if rnd() < 0.4:
                tp = P_tlsproxy.get()
                P(t, "postfix/tlsproxy[%d]: CONNECT from [%s]:%d" % (tp, ip, port))
                P(t + 50000, "postfix/tlsproxy[%d]: Anonymous TLS connection established from [%s]:%d: %s" % (tp, ip, port, TLS_IN[3 + int(rnd() * 2)]))
                n += 2
                t += 100000
            rc = local_users[int(rnd() * n_local)]
            sd = remote_addrs[int(rnd() * n_raddr)][0] if rnd() < 0.6 else ""
            P(t, "postfix/postscreen[%d]: NOQUEUE: reject: RCPT from [%s]:%d: 550 5.7.1 Service unavailable; client [%s] blocked using zen.spamhaus.org; from=<%s>, to=<%s>, proto=ESMTP, helo=<%s>" % (
                postscreen_pid, ip, port, ip, sd, rc, HELO_BOT[int(rnd() * len(HELO_BOT))]), (OP_REJ,))
            n += 1
            if rnd() < 0.4:
                P(t + 60000, "postfix/tlsproxy[%d]: DISCONNECT [%s]:%d" % (P_tlsproxy.get(), ip, port))
                n += 1
            t += 100000 + int(rnd() * 1000000)
        elif r < 0.75:
            P(t, "postfix/postscreen[%d]: HANGUP after %s from [%s]:%d in tests after SMTP handshake" % (postscreen_pid, fmt_d(rnd() * 10), ip, port))
            n += 1
        elif r < 0.85:
            P(t, "postfix/postscreen[%d]: COMMAND TIME LIMIT from [%s]:%d after %s" % (postscreen_pid, ip, port, ("CONNECT", "EHLO", "AUTH")[int(rnd() * 3)]))
            n += 1
        elif r < 0.9:
            P(t, "postfix/postscreen[%d]: HANGUP after %s from [%s]:%d in tests before SMTP handshake" % (postscreen_pid, fmt_d(rnd() * 3), ip, port))
            n += 1
        t += 1000
        P(t, "postfix/postscreen[%d]: DISCONNECT [%s]:%d" % (postscreen_pid, ip, port))
        return n + 1

    def ep_reject(t):
        """smtpd NOQUEUE rejects (after postscreen PASS)."""
        ip = bots[pick_skew(n_bots, 1.2)]
        port = 1024 + int(rnd() * 64000)
        P(t, "postfix/postscreen[%d]: CONNECT from [%s]:%d to [%s]:25" % (postscreen_pid, ip, port, ME_IP))
        t += 2000
        P(t, "postfix/postscreen[%d]: PASS %s [%s]:%d" % (postscreen_pid, "NEW" if rnd() < 0.5 else "OLD", ip, port))
        t += 3000
        n = 2
        dur = 1000000 + int(rnd() * 10000000)
        p = smtpd_pid(t, t + dur)
        if rnd() < 0.5:
            name = "unknown"
            if rnd() < 0.4:
                P(t, "postfix/smtpd[%d]: warning: hostname %s.dyn.example-isp.net does not resolve to address %s: Name or service not known" % (p, ip.replace(".", "-"), ip))
                n += 1
                t += 1000
        else:
            name = "%s.static.%s" % (ip.replace(".", "-"), remote_domains[n_provider + int(rnd() * 500)][0])
        P(t, "postfix/smtpd[%d]: connect from %s[%s]" % (p, name, ip), (OP_CONN,))
        n += 1
        t += 100000 + int(rnd() * 500000)
        nrej = 1 if rnd() < 0.8 else 2 + int(rnd() * 5)
        rcpt = local_users[int(rnd() * n_local)]
        helo = name if name != "unknown" else HELO_BOT[int(rnd() * len(HELO_BOT))]
        sender = remote_addrs[int(rnd() * n_raddr)][0]
        which = int(rnd() * len(REJECTS))
        tmpl, local_rcpt = REJECTS[which]
        for i in range(nrej):
            if not local_rcpt:
                rc = remote_addrs[int(rnd() * n_raddr)][0]
            else:
                rc = rcpt if i == 0 else local_users[int(rnd() * n_local)]
            msg = tmpl.format(rcpt=rc, ip=ip, dom=rc.split("@")[1], helo=helo, sender=sender)
            P(t, "postfix/smtpd[%d]: NOQUEUE: reject: RCPT from %s[%s]: %s; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                p, name, ip, msg, sender, rc, helo), (OP_REJ,))
            n += 1
            t += 50000 + int(rnd() * 300000)
        if rnd() < 0.7:
            P(t, "postfix/smtpd[%d]: disconnect from %s[%s] ehlo=1 mail=1 rcpt=0/%d quit=1 commands=3/%d" % (p, name, ip, nrej, 3 + nrej))
        else:
            P(t, "postfix/smtpd[%d]: lost connection after RCPT from %s[%s]" % (p, name, ip))
            P(t + 1000, "postfix/smtpd[%d]: disconnect from %s[%s] ehlo=1 mail=1 rcpt=0/%d commands=2/%d" % (p, name, ip, nrej, 2 + nrej))
            n += 1
        return n + 1

    def ep_scan(t):
        """connections that end without mail: scanners, TLS failures, lost connections."""
        ip = bots[int(rnd() * n_bots)]
        sn = scanner_names[int(rnd() * len(scanner_names))]
        name = sn if sn == "unknown" else sn % int(rnd() * 99)
        daemon = "postfix/smtpd" if rnd() < 0.6 else "postfix/submission/smtpd"
        n = 0
        if daemon == "postfix/smtpd":
            port = 1024 + int(rnd() * 64000)
            P(t, "postfix/postscreen[%d]: CONNECT from [%s]:%d to [%s]:25" % (postscreen_pid, ip, port, ME_IP))
            P(t + 2000, "postfix/postscreen[%d]: PASS OLD [%s]:%d" % (postscreen_pid, ip, port))
            n += 2
            t += 3000
        p = smtpd_pid(t, t + 3000000)
        P(t, "%s[%d]: connect from %s[%s]" % (daemon, p, name, ip), (OP_CONN,))
        n += 1
        t += 50000 + int(rnd() * 1000000)
        r = rnd()
        if r < 0.4:
            P(t, "%s[%d]: lost connection after EHLO from %s[%s]" % (daemon, p, name, ip))
            P(t + 500, "%s[%d]: disconnect from %s[%s] ehlo=1 commands=1" % (daemon, p, name, ip))
        elif r < 0.6:
            P(t, "%s[%d]: Anonymous TLS connection established from %s[%s]: %s" % (daemon, p, name, ip, TLS_IN[int(rnd() * 6)]))
            P(t + 500, "%s[%d]: disconnect from %s[%s] ehlo=2 starttls=1 quit=1 commands=4" % (daemon, p, name, ip))
        elif r < 0.75:
            P(t, "%s[%d]: SSL_accept error from %s[%s]: -1" % (daemon, p, name, ip))
            P(t + 200, "%s[%d]: warning: TLS library problem: error:0A00010B:SSL routines::wrong version number:../ssl/record/ssl3_record.c:354:" % (daemon, p))
            P(t + 500, "%s[%d]: lost connection after STARTTLS from %s[%s]" % (daemon, p, name, ip))
            P(t + 800, "%s[%d]: disconnect from %s[%s] ehlo=1 starttls=0/1 commands=1/2" % (daemon, p, name, ip))
            n += 2
        elif r < 0.9:
            P(t, "%s[%d]: disconnect from %s[%s] ehlo=1 quit=1 commands=2" % (daemon, p, name, ip))
            n -= 1
        else:
            P(t, "%s[%d]: improper command pipelining after CONNECT from %s[%s]: QUIT\\r\\n" % (daemon, p, name, ip))
            P(t + 500, "%s[%d]: disconnect from %s[%s] quit=1 commands=1" % (daemon, p, name, ip))
        return n + 2

    def ep_sasl_bf(t):
        ip = attackers[pick_skew(n_att, 2.5)]
        daemon = "postfix/submission/smtpd" if rnd() < 0.7 else ("postfix/smtps/smtpd" if rnd() < 0.5 else "postfix/smtpd")
        n = 0
        if daemon == "postfix/smtpd":
            port = 1024 + int(rnd() * 64000)
            P(t, "postfix/postscreen[%d]: CONNECT from [%s]:%d to [%s]:25" % (postscreen_pid, ip, port, ME_IP))
            P(t + 2000, "postfix/postscreen[%d]: PASS OLD [%s]:%d" % (postscreen_pid, ip, port))
            n += 2
            t += 3000
        k = 1 if rnd() < 0.7 else 2 + int(rnd() * 2)
        p = smtpd_pid(t, t + 2000000 + k * 3000000)
        P(t, "%s[%d]: connect from unknown[%s]" % (daemon, p, ip), (OP_CONN,))
        t += 100000
        n += 1
        tls = daemon != "postfix/smtpd" or rnd() < 0.5
        if tls:
            P(t, "%s[%d]: Anonymous TLS connection established from unknown[%s]: %s" % (daemon, p, ip, TLS_IN[3 + int(rnd() * 2)]))
            n += 1
            t += 50000
        for i in range(k):
            t += 1000000 + int(rnd() * 2000000)
            r = rnd()
            if r < 0.8:
                why = "SASL LOGIN authentication failed: UGFzc3dvcmQ6"
            elif r < 0.95:
                why = "SASL PLAIN authentication failed: "
            elif r < 0.99:
                why = "SASL LOGIN authentication failed: authentication failure"
            else:
                why = "SASL LOGIN authentication failed: Connection lost to authentication server"
            P(t, "%s[%d]: warning: unknown[%s]: %s" % (daemon, p, ip, why), (OP_SASL, ip))
            n += 1
        t += 100000
        ehlo = "ehlo=2 starttls=1" if daemon == "postfix/submission/smtpd" and tls else "ehlo=1"
        if rnd() < 0.6:
            P(t, "%s[%d]: lost connection after AUTH from unknown[%s]" % (daemon, p, ip))
            P(t + 500, "%s[%d]: disconnect from unknown[%s] %s auth=0/%d commands=%d/%d" % (daemon, p, ip, ehlo, k, ncmds(ehlo), ncmds(ehlo) + k))
            n += 2
        else:
            P(t, "%s[%d]: disconnect from unknown[%s] %s auth=0/%d rset=1 quit=1 commands=%d/%d" % (daemon, p, ip, ehlo, k, ncmds(ehlo) + 2, ncmds(ehlo) + 2 + k))
            n += 1
        return n

    def ep_imap(t):
        ui = pick_skew(n_local, 1.5)
        u = local_users[ui]
        ip = user_clients[ui][1]
        sess = session_id()
        mp = newpid()
        proto = "imap" if rnd() < 0.9 else "pop3"
        P(t, "dovecot: %s-login: Login: user=<%s>, method=%s, rip=%s, lip=%s, mpid=%d, TLS, session=<%s>" % (
            proto, u, "PLAIN" if rnd() < 0.8 else "LOGIN", ip, ME_IP, mp, sess))
        t += int(1e6 + (rnd() ** 2) * 1800e6)
        if proto == "pop3":
            nm = int(rnd() * 5)
            P(t, "dovecot: pop3(%s)<%d><%s>: Disconnected: Logged out top=0/0, retr=%d/%d, del=%d/%d, size=%d" % (u, mp, sess, nm, nm * 4066, nm, nm + 3, nm * 4000 + 900))
        elif rnd() < 0.6:
            P(t, "dovecot: imap(%s)<%d><%s>: Logged out in=%d out=%d deleted=0 expunged=0 trashed=0 hdr_count=%d hdr_bytes=%d body_count=%d body_bytes=%d" % (
                u, mp, sess, 200 + int(rnd() * 3000), 500 + int(rnd() * 90000), int(rnd() * 5), int(rnd() * 9000), int(rnd() * 3), int(rnd() * 90000)))
        else:
            w = rnd() * 1800
            P(t, "dovecot: imap(%s)<%d><%s>: Disconnected: Connection closed (IDLE running for 0.001 + waiting input for %.3f secs, 2 B in + 10 B out, state=wait-input) in=%d out=%d deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0" % (
                u, mp, sess, w, 200 + int(rnd() * 3000), 500 + int(rnd() * 9000)))
        return 2

    def ep_dove_bf(t):
        ip = attackers[pick_skew(n_att, 2.5)]
        r = rnd()
        proto = "imap" if r < 0.65 else ("pop3" if r < 0.9 else ("managesieve" if r < 0.96 else "submission"))
        user = AUTH_USERS_BF[int(rnd() * len(AUTH_USERS_BF))]
        if rnd() < 0.5:
            user = user + "@" + LOCAL_DOMAINS[0]
        sess = session_id()
        k = 1 if rnd() < 0.6 else 2 + int(rnd() * 4)
        n = 0
        if rnd() < 0.4:
            P(t, "dovecot: auth-worker(%d): pam(%s,%s,<%s>): %s" % (auth_worker_pid, user, ip, sess, "unknown user" if rnd() < 0.5 else "Password mismatch"))
            n += 1
        t += int(1e6 + rnd() * 20e6)
        secs = int((k * 2.5) + rnd() * 10)
        r = rnd()
        if r < 0.4:
            body = "dovecot: %s-login: Disconnected: Connection closed (auth failed, %d attempts in %d secs): user=<%s>, method=PLAIN, rip=%s, lip=%s, TLS, session=<%s>" % (proto, k, secs, user, ip, ME_IP, sess)
        elif r < 0.7:
            body = "dovecot: %s-login: Disconnected (auth failed, %d attempts in %d secs): user=<%s>, method=PLAIN, rip=%s, lip=%s, TLS, session=<%s>" % (proto, k, secs, user, ip, ME_IP, sess)
        elif r < 0.85:
            body = "dovecot: %s-login: Login aborted: Connection closed (auth failed, %d attempts in %d secs) (auth_failed): user=<%s>, method=PLAIN, rip=%s, lip=%s, TLS, session=<%s>" % (proto, k, secs, user, ip, ME_IP, sess)
        else:
            body = "dovecot: %s-login: Disconnected: Inactivity (auth failed, %d attempts in %d secs): user=<%s>, method=LOGIN, rip=%s, lip=%s, session=<%s>" % (proto, k, secs, user, ip, ME_IP, sess)
        P(t, body, (OP_DOVE, ip, "other" if proto in ("managesieve", "submission") else proto, k))
        return n + 1

    def ep_anvil(t):
        ip = bots[int(rnd() * n_bots)]
        ap_ = newpid()
        st = classic_stamp(t - int(rnd() * 500e6))
        svc = "smtpd" if rnd() < 0.85 else "submission"
        P(t, "postfix/anvil[%d]: statistics: max connection rate %d/60s for (%s:%s) at %s" % (ap_, 1 + int(rnd() * 4), svc, ip, st))
        P(t + 10, "postfix/anvil[%d]: statistics: max connection count %d for (%s:%s) at %s" % (ap_, 1 + int(rnd() * 2), svc, ip, st))
        P(t + 20, "postfix/anvil[%d]: statistics: max cache size %d at %s" % (ap_, 1 + int(rnd() * 6), st))
        return 3

    def ep_in(t):
        return message(t, "in")

    def ep_sub(t):
        return message(t, "sub")

    def ep_pickup(t):
        return message(t, "pickup")

    def ep_bulk(t):
        return message(t, "bulk")

    # episode weights (per episode); legit ones follow the daily curve, noise is flat
    legit = [(ep_in, 45.0), (ep_sub, 38.0), (ep_pickup, 3.0), (ep_bulk, 0.25), (ep_imap, 40.0)]
    noisy = [(ep_bot, 60.0), (ep_reject, 7.0), (ep_scan, 18.0), (ep_sasl_bf, 14.0), (ep_dove_bf, 8.0), (ep_anvil, 3.0)]
    diurnal = [0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.55, 0.95, 1.5, 1.75, 1.8, 1.7, 1.5, 1.6, 1.7, 1.65, 1.5, 1.3, 1.05, 0.9,
               0.75, 0.6, 0.45, 0.35]
    m = sum(diurnal) / 24
    diurnal = [x / m for x in diurnal]
    tables = []
    rate = []
    for h in range(24):
        fns, cum, s = [], [], 0.0
        for fn, w in legit:
            s += w * diurnal[h]
            fns.append(fn)
            cum.append(s)
        for fn, w in noisy:
            s += w * noise
            fns.append(fn)
            cum.append(s)
        tables.append((fns, cum, s))
        rate.append(s)
    mr = sum(rate) / 24
    rate = [x / mr for x in rate]  # relative line rate per hour, mean 1
    cumrate = [sum(rate[:h]) * 3600000000 for h in range(24)]

    # ---------------- main loop ----------------
    out_f = sys.stdout if a.output == "-" else open(a.output, "w", encoding="utf-8", newline="\n", buffering=1 << 20)
    mean_gap = a.days * 86400e6 / max(N, 1)
    cursor = int(rnd() * 60e6)
    last_sec = -1
    pre = ""
    n = 0
    np_ = nd_ = no_ = 0
    out = []
    oapp = out.append
    pop = heapq.heappop
    bis = bisect.bisect
    first_t = None
    last_t = 0
    gap = mean_gap
    flush_at = 65536 if 65536 < N else N
    next_check = 0
    dove_pat = " %s dovecot: " % host
    other_pats = [" %s amavis[" % host, " %s opendkim[" % host]
    while n < N:
        h = (cursor // 3600000000) % 24
        fns, cum, tot = tables[h]
        fn = fns[bis(cum, rnd() * tot)]
        k = fn(cursor)
        cursor += int(k * gap * -log(1.0 - rnd()) / rate[h]) + 1
        if n >= next_check:
            # keep the emitted line count on schedule (episodes only estimate their line count)
            next_check = n + 4096
            if n:
                dd, rem = divmod(cursor, 86400000000)
                hh, rem = divmod(rem, 3600000000)
                eff = dd * 86400000000 + cumrate[hh] + rate[hh] * rem  # diurnal-weighted elapsed time
                corr = n * mean_gap / eff
                gap *= 0.8 if corr < 0.8 else (1.25 if corr > 1.25 else corr)
        if first_t is None and heap and heap[0][0] <= cursor:
            first_t = heap[0][0]
        while heap and heap[0][0] <= cursor:
            t, _, body, op = pop(heap)
            sec = t // 1000000
            if sec != last_sec:
                last_sec = sec
                d, s = divmod(sec, 86400)
                dp = day_cache.get(d) or day_prefix(d)
                if classic:
                    pre = "%s%s %s " % (dp, hms[s], host)
                else:
                    pre = dp + hms[s] + "."
            if classic:
                oapp(pre + body)
            else:
                oapp("%s%06d%s %s %s" % (pre, t % 1000000, tz, host, body))
            if op is not None:
                o = op[0]
                if o == OP_CONN:
                    C["connections"] += 1
                elif o == OP_PFSENT:
                    C["pf_sent"] += 1
                elif o == OP_PFRCVD:
                    C["pf_rcvd"] += 1
                elif o == OP_REJ:
                    C["rejected"] += 1
                elif o == OP_QUEUED:
                    C["queued"] += 1
                    for rec in op[1]:
                        rec[2] = 1
                        pending[rec[0]] += 1
                elif o == OP_FINAL:
                    rec = op[1]
                    dr = op[3]
                    if rec[2] == 1:
                        pending[rec[0]] -= 1
                    rec[2] = 2
                    dcount[dr][op[2]] += 1
                    if op[2] == S_SENT:
                        C["pf_sent"] += 1
                        if rec[1]:
                            C["deferred_then_sent"] += 1
                    else:
                        C["pf_bounced"] += 1
                elif o == OP_DEFER:
                    rec = op[1]
                    C["deferrals"] += 1
                    rec[1] += 1
                    if not rec[3][0]:
                        rec[3][0] = 1
                        C["with_deferral"] += 1
                    if op[2] != rec[0]:
                        if rec[2] == 1:
                            pending[rec[0]] -= 1
                            pending[op[2]] += 1
                        rec[0] = op[2]
                elif o == OP_EXPIRE:
                    for rec in op[1]:
                        if rec[2] != 2:
                            if rec[2] == 1:
                                pending[rec[0]] -= 1
                            rec[2] = 2
                            dcount[rec[0]][S_EXPIRED] += 1
                elif o == OP_NOTIFY:
                    C[op[1]] += 1
                elif o == OP_SASL:
                    e = byip.get(op[1])
                    if e is None:
                        e = byip[op[1]] = {"smtp": 0, "imap": 0, "pop3": 0, "other": 0}
                    e["smtp"] += 1
                elif o == OP_DOVE:
                    e = byip.get(op[1])
                    if e is None:
                        e = byip[op[1]] = {"smtp": 0, "imap": 0, "pop3": 0, "other": 0}
                    e[op[2]] += op[3]
            n += 1
            if n >= flush_at:
                last_t = t
                if n >= N:
                    break
                flush_at = n + 65536 if n + 65536 < N else N
                out.append("")
                chunk = "\n".join(out)
                nd_ += chunk.count(dove_pat)
                no_ += chunk.count(other_pats[0]) + chunk.count(other_pats[1])
                out_f.write(chunk)
                out.clear()
    if out:
        out.append("")
        chunk = "\n".join(out)
        nd_ += chunk.count(dove_pat)
        no_ += chunk.count(other_pats[0]) + chunk.count(other_pats[1])
        out_f.write(chunk)
        out.clear()
    np_ = n - nd_ - no_
    out_f.flush()
    if out_f is not sys.stdout:
        out_f.close()
    if out_f is not sys.stdout and os.path.isfile(a.output):
        # logs are written up to their mtime: helps year inference of classic stamps
        try:
            ep = epoch_base + last_t / 1e6
            os.utime(a.output, (ep, ep))
        except (OverflowError, OSError):
            pass

    def stamp(t):
        if t is None:
            return None
        dt = datetime.datetime(start.year, start.month, start.day) + datetime.timedelta(microseconds=t)
        return dt.isoformat() + (tz if tz not in ("Z", "z") else "Z")

    out_d = dcount[OUT]
    in_d = dcount[IN]
    by_ip = dict(sorted(byip.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))
    auth_total = sum(sum(v.values()) for v in byip.values())
    return {
        "window": {"from": None, "to": None},
        "lines": {"read": n, "postfix": np_, "dovecot": nd_, "other": no_, "malformed": 0},
        "deliveries": {
            "sent": out_d[0] + in_d[0], "bounced": out_d[1] + in_d[1], "expired": out_d[2] + in_d[2],
            "pending": pending[OUT] + pending[IN],
            "outbound": {"sent": out_d[0], "bounced": out_d[1], "expired": out_d[2], "pending": pending[OUT]},
            "inbound": {"sent": in_d[0], "bounced": in_d[1], "expired": in_d[2], "pending": pending[IN]},
        },
        "deferrals": C["deferrals"], "deferred_then_sent": C["deferred_then_sent"],
        "messages": {"queued": C["queued"], "with_deferral": C["with_deferral"]},
        "notifications": {"non_delivery": C["nd"], "delay": C["delay"], "success": C["success"]},
        "rejected": C["rejected"], "connections": C["connections"],
        "auth_failures": {"total": auth_total, "by_ip": by_ip},
        "evictions": 0,
        "pflogsumm": {
            "received": C["pf_rcvd"], "delivered": C["pf_sent"], "deferred": C["with_deferral"],
            "deferrals": C["deferrals"], "bounced": C["pf_bounced"], "rejected": C["rejected"],
            "note": "figures pflogsumm 1.1.5 should print in its Grand Totals for this file",
        },
        "generator": {
            "seed": a.seed, "lines": n, "days": a.days, "start": a.start, "format": a.format,
            "long_queue_ids": a.long_queue_ids, "filter_share": a.filter_share,
            "filter_syslog_names": a.filter_syslog_names, "local_transport": a.local_transport,
            "queue_lifetime": a.queue_lifetime, "delay_warning": a.delay_warning, "noise": a.noise,
            "first": stamp(first_t), "last": stamp(last_t),
        },
    }


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        try:
            sys.stdout.close()
        except Exception:
            pass
        os._exit(0)
