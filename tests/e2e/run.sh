#!/usr/bin/env bash
# End-to-end harness for postlens: a real Postfix + Dovecot on loopback, a scripted
# workload, and a truth.json computed from what the clients and a stand-in remote MX saw.
#
# Usage:  tests/e2e/run.sh [OUT_DIR]          (or E2E_OUT=DIR; default /tmp/postlens-e2e)
# Env:    POSTLENS=/path/to/postlens   also compare postlens with the truth: `import` of each finished log,
#                                      and a live `postlens run` daemon per log that follows it while
#                                      Postfix writes (stats + search answered over its control socket);
#                                      then `notify-test` e-mails through Postfix (SMTP, STARTTLS+AUTH,
#                                      SMTPS+AUTH, sendmail) into a Maildir the harness reads
#         E2E_LIVE_TIMEOUT=30          seconds to wait for a live daemon to catch up with its log
#         E2E_NO_CROSSCHECK=1          don't fail when a grep of the log disagrees with truth
#         E2E_SKIP_APT=1               never run apt-get (fail if something is missing)
#         E2E_TIMEOUT=240              seconds to wait for the queue to drain
# Needs:  root, Debian 12 (bookworm); ports 25, 587, 465, 110, 143, 2525 free on 127.0.0.1.
# It rewrites /etc/postfix/{main,master}.cf and creates system users e2e-alice, e2e-bob,
# e2e-sender, e2e-vmail: run it on a test machine or in CI, not on a real mail server.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-${E2E_OUT:-/tmp/postlens-e2e}}"
WORK="$OUT/work"
RUN=/run/postlens-e2e           # pid files and Dovecot base_dir (fixed, to clean up after a killed run)
PFX=/etc/postfix/e2e            # Postfix lookup tables written by this harness
TIMEOUT="${E2E_TIMEOUT:-240}"
LIVE_TIMEOUT="${E2E_LIVE_TIMEOUT:-30}"
FMTS=(classic rfc3339)
START_TS=$(date +%s)

RESULTS=()                      # every PASS/FAIL line, repeated at the end
log()  {
  printf '[e2e %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2
  case "$*" in PASS:*|FAIL:*) RESULTS+=("$*") ;; esac
}
die()  { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"; WORK="$OUT/work"

# ---------------------------------------------------------------- 1. packages
PKGS=(postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd swaks rsyslog python3 iproute2 procps openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ -z "${E2E_SKIP_APT:-}" ] || die "missing packages and E2E_SKIP_APT set: ${missing[*]}"
  log "installing: ${missing[*]}"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string e2e.test" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  # policy-rc.d keeps the packages' init scripts from starting daemons; we start our own.
  pol_created=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; pol_created=1
  fi
  apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >"$OUT/apt.log" 2>&1 || { tail -30 "$OUT/apt.log" >&2; die "apt-get install failed (see $OUT/apt.log)"; }
  [ -z "$pol_created" ] || rm -f /usr/sbin/policy-rc.d
fi

# ---------------------------------------------------------------- 2. stop leftovers, reset state
kill_pidfile() {  # kill the process named in a pid file of ours, wait for it
  local f="$1" pid i
  [ -s "$f" ] || return 0
  pid="$(tr -dc 0-9 < "$f")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
postfix_stop() {
  if postfix status >/dev/null 2>&1; then
    postfix stop >/dev/null 2>&1 || true
    local i; for i in $(seq 1 50); do postfix status >/dev/null 2>&1 || break; sleep 0.2; done
  fi
}
STARTED=""
cleanup() {
  local rc=$?
  set +e
  local f
  for f in "${FMTS[@]}"; do kill_pidfile "$RUN/postlens-live-$f.pid"; done   # live daemons of a failed run
  if [ -n "$STARTED" ]; then
    log "stopping daemons"
    postfix_stop
    kill_pidfile "$RUN/dovecot/master.pid"
    kill_pidfile "$RUN/remote_mx.pid"
    sleep 0.5                       # let the last lines reach syslog
    kill_pidfile "$RUN/rsyslogd.pid"
    STARTED=""
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "output: $OUT"
postfix_stop
kill_pidfile "$RUN/dovecot/master.pid"
kill_pidfile "$RUN/remote_mx.pid"
kill_pidfile "$RUN/rsyslogd.pid"
for f in "${FMTS[@]}"; do kill_pidfile "$RUN/postlens-live-$f.pid"; done

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
for p in 25 587 465 110 143 2525; do
  port_busy "$p" && die "TCP port $p is already in use (ss -ltnp 'sport = :$p'); stop that service first"
done
if pgrep -x rsyslogd >/dev/null 2>&1 || pgrep -x syslog-ng >/dev/null 2>&1 || pgrep -x systemd-journald >/dev/null 2>&1; then
  log "warning: another syslog daemon is running; this harness takes over /dev/log while it runs"
fi

rm -rf "$WORK" "$OUT/mail-classic.log" "$OUT/mail-rfc3339.log" "$OUT/classic" "$OUT/rfc3339" \
       "$OUT/truth.json" "$OUT/truth-detail.json" \
       "$OUT"/stats-*.json "$OUT"/search-*.json "$OUT"/status-*.json "$OUT"/postlens-*
mkdir -p "$WORK" "$RUN" "$PFX"
# each format in a directory of its own (one live daemon watches each directory), plus a
# symlink in $OUT so that the logs keep their old paths
for f in "${FMTS[@]}"; do
  mkdir -p "$OUT/$f"; ln -s "$f/mail-$f.log" "$OUT/mail-$f.log"
done

# users: local.test mailboxes are system users with ~/Maildir; e2e-vmail owns Dovecot's store
for u in e2e-alice e2e-bob e2e-sender e2e-vmail; do
  id -u "$u" >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin "$u"
done
for u in e2e-alice e2e-bob e2e-sender; do
  h="$(getent passwd "$u" | cut -d: -f6)"
  [ -d "$h" ] || { mkdir -p "$h"; chown "$u:" "$h"; }
  rm -rf "$h/Maildir"
done

# ---------------------------------------------------------------- 3. configuration
SASL_USER=e2e@lmtp.test
SASL_PASS=e2e-secret
VUID="$(id -u e2e-vmail)"; VGID="$(id -g e2e-vmail)"
mkdir -p "$WORK/vmail"; chown e2e-vmail: "$WORK/vmail"

# --- rsyslog: /dev/log in, mail.* out twice (classic BSD and RFC 3339 high precision)
mkdir -p "$WORK/rsyslog"
cat > "$WORK/rsyslog.conf" <<EOF
global(workDirectory="$WORK/rsyslog")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0" SysSock.Unlink="on")
mail.*  action(type="omfile" file="$OUT/classic/mail-classic.log" template="RSYSLOG_TraditionalFileFormat")
mail.*  action(type="omfile" file="$OUT/rfc3339/mail-rfc3339.log" template="RSYSLOG_FileFormat")
EOF

# --- Dovecot: passwd-file users, IMAP/POP3 on 127.0.0.1, LMTP + SASL sockets for Postfix
printf '%s:{PLAIN}%s::::::\n' "$SASL_USER" "$SASL_PASS" > "$WORK/dovecot-users"
chmod 640 "$WORK/dovecot-users"; chgrp dovecot "$WORK/dovecot-users"
cat > "$WORK/dovecot.conf" <<EOF
protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = $RUN/dovecot
hostname = e2e.test
postmaster_address = postmaster@e2e.test
log_path = syslog
syslog_facility = mail
auth_verbose = yes
auth_mechanisms = plain login
disable_plaintext_auth = no
ssl = no
first_valid_uid = $VUID
last_valid_uid = $VUID
mail_location = maildir:$WORK/vmail/%d/%n
passdb {
  driver = passwd-file
  args = $WORK/dovecot-users
}
userdb {
  driver = passwd-file
  args = $WORK/dovecot-users
  default_fields = uid=$VUID gid=$VGID home=$WORK/vmail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = 143
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = 110
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  unix_listener /var/spool/postfix/private/dovecot-lmtp {
    mode = 0600
    user = postfix
    group = postfix
  }
}
# no growing per-IP auth penalty (keeps the run short; the 2 s auth_failure_delay stays)
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
doveconf -c "$WORK/dovecot.conf" -n >/dev/null 2>"$WORK/doveconf.err" || { cat "$WORK/doveconf.err" >&2; die "dovecot config invalid"; }

# --- Postfix: fresh main.cf/master.cf every run
: > /etc/postfix/main.cf
printf 'postmaster root\n' > "$PFX/aliases"      # texthash: "key value"
# the default delay template counts in hours/days, which makes bounce(8) warn with our
# sub-minute timings: same text, counted in seconds (Subject unchanged)
postconf -t | sed -n '/^delay_template/,/^EOF/p' \
  | sed -e 's/\$delay_warning_time_hours hour(s)/$delay_warning_time_seconds second(s)/' \
        -e 's/\$maximal_queue_lifetime_days day(s)/$maximal_queue_lifetime_seconds second(s)/' > "$PFX/bounce.cf"
grep -q '^Subject: Delayed Mail (still being retried)' "$PFX/bounce.cf" || die "could not derive the delay template"
printf '%s OK\nghost@lmtp.test OK\n' "$SASL_USER" > "$PFX/vmailbox"   # ghost: Postfix accepts, Dovecot LMTP refuses
printf 'remote.test smtp:[127.0.0.1]:2525\n' > "$PFX/transport"
cp /usr/share/postfix/master.cf.dist /etc/postfix/master.cf
postconf -e \
  "compatibility_level = 3.6" \
  "myhostname = e2e.test" "mydomain = e2e.test" 'myorigin = $myhostname' \
  'mydestination = $myhostname, localhost, local.test' \
  "inet_interfaces = loopback-only" "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.1/32" \
  "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" \
  "smtpd_banner = \$myhostname ESMTP postlens-e2e" \
  "smtpd_peername_lookup = no" "smtpd_error_sleep_time = 0" \
  "smtpd_sasl_type = dovecot" "smtpd_sasl_path = private/auth" "smtpd_sasl_auth_enable = no" \
  "alias_maps = texthash:$PFX/aliases" "alias_database =" \
  "home_mailbox = Maildir/" "mailbox_command =" "biff = no" \
  "virtual_mailbox_domains = lmtp.test" "virtual_mailbox_maps = texthash:$PFX/vmailbox" \
  "virtual_transport = lmtp:unix:private/dovecot-lmtp" \
  "transport_maps = texthash:$PFX/transport" \
  "default_transport = error:5.7.1 postlens e2e harness: no other destinations" \
  "smtp_dns_support_level = disabled" "smtp_host_lookup = native" "lmtp_host_lookup = native" \
  "smtp_connect_timeout = 5s" \
  "queue_run_delay = 5s" "minimal_backoff_time = 5s" "maximal_backoff_time = 10s" \
  "maximal_queue_lifetime = 1m" "bounce_queue_lifetime = 1m" "delay_warning_time = 35s" \
  "bounce_template_file = $PFX/bounce.cf" "maillog_file ="
postconf -F '*/*/chroot = n'
postconf -M '127.0.0.1:587/inet=127.0.0.1:587 inet n - n - - smtpd'
postconf -P '127.0.0.1:587/inet/syslog_name=postfix/submission' \
            '127.0.0.1:587/inet/smtpd_sasl_auth_enable=yes' \
            '127.0.0.1:587/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject'
postfix check 2>"$WORK/postfix-check.err" || { cat "$WORK/postfix-check.err" >&2; die "postfix check failed"; }

# empty the queue left by an earlier run (postfix is stopped here)
postsuper -d ALL >/dev/null 2>&1 || true
find /var/spool/postfix/maildrop -type f -delete 2>/dev/null || true

# ---------------------------------------------------------------- 4. start daemons
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local t="$1" what="$2"; shift 2
  local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${t}s waiting for $what"
    sleep 0.2
  done
}
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }   # no connection: keeps logs clean

# --- live daemons: one `postlens run` per log format, started before the workload, following
# $OUT/<fmt>/mail-<fmt>.log while rsyslog writes it (the file appears with the first mail.* line)
rc=0
declare -A LIVE_PID=() LIVE_OK=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
live_ws() { echo "$OUT/postlens-live-ws-$1"; }
live_running() {  # the daemon answers `status` through its control socket
  # (wait for the socket first: a `status` before the daemon holds the database would open it itself)
  [ -S "$(live_ws "$1")/postlens.sock" ] || return 1
  "$POSTLENS" status --workspace "$(live_ws "$1")" --json 2>/dev/null \
    | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("running") is True else 1)'
}
live_start() {
  local fmt="$1" ws port pid
  ws="$(live_ws "$fmt")"; rm -rf "$ws"; mkdir -p "$ws"; port="$(free_port)"
  log "starting live postlens ($fmt): run --watch-dir $OUT/$fmt --log-file-patterns mail-$fmt.log --listen 127.0.0.1:$port"
  "$POSTLENS" run --workspace "$ws" --watch-dir "$OUT/$fmt" --log-file-patterns "mail-$fmt.log" \
    --listen "127.0.0.1:$port" --retention 36500d >"$OUT/postlens-live-$fmt.out" 2>"$OUT/postlens-live-$fmt.err" &
  pid=$!; echo "$pid" > "$RUN/postlens-live-$fmt.pid"; LIVE_PID[$fmt]=$pid
  local end=$(( $(date +%s) + 15 ))
  until live_running "$fmt"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$OUT/postlens-live-$fmt.err" >&2; log "FAIL: live $fmt: postlens run exited during start-up"; rc=1; return 0
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      cat "$OUT/postlens-live-$fmt.err" >&2; log "FAIL: live $fmt: no answer on the control socket after 15s"; rc=1; return 0
    fi
    sleep 0.2
  done
  LIVE_OK[$fmt]=1
}
live_caught_up() {  # live_caught_up FMT LINES: every source 0 bytes behind and stats lines.read == LINES
  local fmt="$1" n="$2" ws; ws="$(live_ws "$fmt")"
  "$POSTLENS" status --workspace "$ws" --json >"$OUT/status-live-$fmt.json" 2>/dev/null || return 1
  "$POSTLENS" stats --workspace "$ws" --json >"$OUT/stats-live-$fmt.json" 2>/dev/null || return 1
  python3 - "$OUT/status-live-$fmt.json" "$OUT/stats-live-$fmt.json" "$n" "mail-$fmt.log" <<'PYEOF'
import json, sys
st, stats, n, name = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3]), sys.argv[4]
srcs = (st.get("live") or {}).get("sources") or []
behind = [s.get("behind") for s in srcs]
read = stats["lines"]["read"]
ok = st.get("running") is True and any(s.get("name", "").endswith("/" + name) for s in srcs) \
     and all(b == 0 for b in behind) and read == n
print("running=%s behind=%s lines.read=%s (log has %d) uncommitted_lines=%s"
      % (st.get("running"), behind, read, n, (st.get("live") or {}).get("uncommitted_lines")))
sys.exit(0 if ok else 1)
PYEOF
}
live_check() {  # after the logs are complete: wait for catch-up, compare, stop with SIGTERM
  local fmt="$1" n="$2" ws pid state end t0 ms code
  ws="$(live_ws "$fmt")"; pid="${LIVE_PID[$fmt]}"
  log "live $fmt: waiting for the daemon to catch up (timeout ${LIVE_TIMEOUT}s)"
  end=$(( $(date +%s) + LIVE_TIMEOUT ))
  until state="$(live_caught_up "$fmt" "$n")"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$OUT/postlens-live-$fmt.err" >&2; log "FAIL: live $fmt: postlens run died while following the log"
      rc=1; rm -f "$RUN/postlens-live-$fmt.pid"; return 0
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      log "FAIL: live $fmt: not caught up after ${LIVE_TIMEOUT}s: $state"; rc=1; break
    fi
    sleep 0.5
  done
  log "live $fmt: $state"
  # stats-live-$fmt.json was written by the last poll, answered by the running daemon
  if python3 "$HERE/compare.py" --quiet "$OUT/truth.json" "$OUT/stats-live-$fmt.json"; then
    log "PASS: live $fmt: stats of the running daemon match truth"
  else
    log "FAIL: live $fmt: stats of the running daemon do not match truth"; rc=1
  fi
  if "$POSTLENS" search --workspace "$ws" --json --limit 100000 >"$OUT/search-live-$fmt.json" 2>"$OUT/postlens-live-search-$fmt.err" \
     && python3 "$HERE/compare_search.py" "$OUT/truth-detail.json" "$OUT/search-live-$fmt.json"; then
    log "PASS: live $fmt: search of the running daemon matches the per-delivery truth"
  else
    cat "$OUT/postlens-live-search-$fmt.err" >&2
    log "FAIL: live $fmt: search of the running daemon does not match the per-delivery truth"; rc=1
  fi
  # SIGTERM: must exit 0 within 2 s
  t0=$(date +%s%N); kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ]; do sleep 0.02; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if kill -0 "$pid" 2>/dev/null; then
    log "FAIL: live $fmt: still running ${ms}ms after SIGTERM (killing it)"; rc=1
    kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  else
    code=0; wait "$pid" || code=$?
    if [ "$code" = 0 ]; then
      log "PASS: live $fmt: exited 0 ${ms}ms after SIGTERM"
    else
      tail -5 "$OUT/postlens-live-$fmt.err" >&2; log "FAIL: live $fmt: exit code $code after SIGTERM (${ms}ms)"; rc=1
    fi
  fi
  rm -f "$RUN/postlens-live-$fmt.pid"
}

STARTED=1
log "starting rsyslogd"
rsyslogd -f "$WORK/rsyslog.conf" -i "$RUN/rsyslogd.pid" || die "rsyslogd failed to start"
wait_for 10 "/dev/log" test -S /dev/log
wait_for 10 "rsyslogd pid file" test -s "$RUN/rsyslogd.pid"

if [ -n "${POSTLENS:-}" ]; then
  [ -x "$POSTLENS" ] || die "POSTLENS=$POSTLENS is not an executable"
  for fmt in "${FMTS[@]}"; do live_start "$fmt"; done
fi

log "starting stand-in MX on 127.0.0.1:2525"
python3 "$HERE/remote_mx.py" --listen 127.0.0.1:2525 --log "$WORK/mx.jsonl" --pidfile "$RUN/remote_mx.pid" \
  >"$WORK/remote_mx.out" 2>&1 &
wait_for 10 "stand-in MX listening on 2525" listening 2525

log "starting dovecot"
mkdir -p "$RUN/dovecot"
dovecot -c "$WORK/dovecot.conf" || die "dovecot failed to start"
wait_for 15 "dovecot IMAP on 143" listening 143
wait_for 15 "dovecot POP3 on 110" listening 110
wait_for 15 "dovecot LMTP socket" test -S /var/spool/postfix/private/dovecot-lmtp
wait_for 15 "dovecot auth socket" test -S /var/spool/postfix/private/auth

log "starting postfix"
postfix start >"$WORK/postfix-start.out" 2>&1 || { cat "$WORK/postfix-start.out" >&2; die "postfix start failed"; }
wait_for 15 "postfix smtpd on 25" listening 25
wait_for 15 "postfix submission on 587" listening 587

# ---------------------------------------------------------------- 5. workload
log "running workload"
python3 "$HERE/workload.py" run --work "$WORK" --sasl-user "$SASL_USER" --sasl-pass "$SASL_PASS" \
  || die "workload failed"

queue_empty() {  # a failing postqueue (postfix down) is "not empty", not "empty"
  local q; q="$(postqueue -j 2>/dev/null)" || return 1
  [ -z "$q" ] && [ -z "$(find /var/spool/postfix/maildrop -type f 2>/dev/null)" ]
}
log "waiting for the queue to drain (deferrals, expiry, notifications; timeout ${TIMEOUT}s)"
end=$(( $(date +%s) + TIMEOUT )); empty_since=""
while :; do
  if queue_empty; then
    [ -n "$empty_since" ] || empty_since=$(date +%s)
    [ $(( $(date +%s) - empty_since )) -ge 3 ] && break   # stays empty for 3 s
  else
    empty_since=""
  fi
  if [ "$(date +%s)" -ge "$end" ]; then
    postqueue -p >&2 || true
    die "queue not empty after ${TIMEOUT}s"
  fi
  sleep 1
done
log "queue empty"
if [ -n "${POSTLENS:-}" ]; then   # informational: the daemons have been reading while Postfix worked
  for fmt in "${FMTS[@]}"; do
    [ -n "${LIVE_OK[$fmt]:-}" ] || continue
    read_now="$("$POSTLENS" stats --workspace "$(live_ws "$fmt")" --json 2>/dev/null \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["lines"]["read"])' 2>/dev/null)" || read_now="?"
    log "live $fmt: ${read_now} lines read so far (log has $(wc -l < "$OUT/mail-$fmt.log") lines, Postfix still running)"
  done
fi

# ---------------------------------------------------------------- 6. truth
python3 "$HERE/workload.py" truth --work "$WORK" --sasl-user "$SASL_USER" --sasl-pass "$SASL_PASS" \
  --out "$OUT/truth.json" --detail "$OUT/truth-detail.json" || die "could not compute truth"

# stop everything so rsyslog has written every line, then cross-check with plain greps
postfix_stop
kill_pidfile "$RUN/dovecot/master.pid"
kill_pidfile "$RUN/remote_mx.pid"
sleep 0.5
kill_pidfile "$RUN/rsyslogd.pid"
STARTED=""
[ -s "$OUT/mail-classic.log" ] && [ -s "$OUT/mail-rfc3339.log" ] || die "syslog output files are empty"
n1=$(wc -l < "$OUT/mail-classic.log"); n2=$(wc -l < "$OUT/mail-rfc3339.log")
[ "$n1" = "$n2" ] || die "the two log files differ in line count ($n1 vs $n2)"
log "logs: $n1 lines each"

if python3 "$HERE/workload.py" crosscheck --truth "$OUT/truth.json" --log "$OUT/mail-classic.log"; then
  :
else
  [ -n "${E2E_NO_CROSSCHECK:-}" ] && log "warning: cross-check failed (ignored: E2E_NO_CROSSCHECK)" \
    || die "cross-check of truth against the log failed: the environment or the harness misbehaved"
fi
cat "$OUT/truth.json"

# ---------------------------------------------------------------- 7. postlens
if [ -n "${POSTLENS:-}" ]; then
  # 7a. the live daemons, still running: they followed the logs while Postfix wrote them
  for fmt in "${FMTS[@]}"; do
    if [ -n "${LIVE_OK[$fmt]:-}" ]; then live_check "$fmt" "$n1"; fi
  done
  # 7b. import of the finished logs
  for fmt in "${FMTS[@]}"; do
    ws="$OUT/postlens-ws-$fmt"; rm -rf "$ws"; mkdir -p "$ws"
    log "postlens import ($fmt)"
    if ! "$POSTLENS" import --workspace "$ws" "$OUT/mail-$fmt.log" 2>"$OUT/postlens-import-$fmt.err"; then
      cat "$OUT/postlens-import-$fmt.err" >&2; log "FAIL: postlens import ($fmt) exited non-zero"; rc=1; continue
    fi
    if ! "$POSTLENS" stats --workspace "$ws" --json >"$OUT/stats-$fmt.json" 2>"$OUT/postlens-stats-$fmt.err"; then
      cat "$OUT/postlens-stats-$fmt.err" >&2; log "FAIL: postlens stats ($fmt) exited non-zero"; rc=1; continue
    fi
    if python3 "$HERE/compare.py" --quiet "$OUT/truth.json" "$OUT/stats-$fmt.json"; then
      log "PASS: import $fmt: stats match truth"
    else
      log "FAIL: import $fmt: stats do not match truth"; rc=1
    fi
    "$POSTLENS" search --workspace "$ws" --json --limit 100000 >"$OUT/search-$fmt.json"
    if python3 "$HERE/compare_search.py" "$OUT/truth-detail.json" "$OUT/search-$fmt.json"; then
      log "PASS: import $fmt: search matches the per-delivery truth"
    else
      log "FAIL: import $fmt: search does not match the per-delivery truth"; rc=1
    fi
  done
else
  log "POSTLENS not set: produced logs and truth only"
fi

# ---------------------------------------------------------------- 8. notifications by e-mail
# After the comparisons (the logs above are final): Postfix and Dovecot once more, now with
# STARTTLS on 25 and 587 (587 requires it before AUTH), SMTPS with AUTH on 465, a certificate
# from a CA made here, and a second rsyslog writing notify-mail.log. One postlens channel per
# way of sending; each sends to its own address extension of e2e-notify@local.test, which
# local(8) delivers into ~e2e-notify/Maildir with a Delivered-To naming the extension.
notify_phase() {
  local ws="$OUT/postlens-notify-ws" nd="$WORK/notify" u=e2e-notify home code out
  rm -rf "$ws" "$nd" "$OUT/notify-mail.log"; mkdir -p "$ws" "$nd" "$WORK/rsyslog-notify"
  id -u "$u" >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin "$u"
  home="$(getent passwd "$u" | cut -d: -f6)"
  [ -d "$home" ] || { mkdir -p "$home"; chown "$u:" "$home"; }
  rm -rf "$home/Maildir"

  # a CA, and a server certificate for 127.0.0.1 signed by it
  if ! { openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=postlens e2e CA" \
           -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
           -keyout "$nd/ca.key" -out "$nd/ca.pem" \
         && openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$nd/server.key" -out "$nd/server.csr" \
         && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$nd/ext.cnf" \
         && openssl x509 -req -in "$nd/server.csr" -CA "$nd/ca.pem" -CAkey "$nd/ca.key" -CAcreateserial -days 2 \
              -extfile "$nd/ext.cnf" -out "$nd/server.pem"; } >"$nd/openssl.log" 2>&1; then
    cat "$nd/openssl.log" >&2; log "FAIL: notify: could not make the test certificates"; return 1
  fi
  chmod 600 "$nd/server.key"

  postconf -e "smtpd_tls_cert_file = $nd/server.pem" "smtpd_tls_key_file = $nd/server.key" \
    "smtpd_tls_security_level = may" "smtpd_tls_received_header = yes" "recipient_delimiter = +"
  postconf -P '127.0.0.1:587/inet/smtpd_tls_security_level=encrypt' '127.0.0.1:587/inet/smtpd_tls_auth_only=yes'
  postconf -M '127.0.0.1:465/inet=127.0.0.1:465 inet n - n - - smtpd'
  postconf -P '127.0.0.1:465/inet/syslog_name=postfix/smtps' '127.0.0.1:465/inet/smtpd_tls_wrappermode=yes' \
              '127.0.0.1:465/inet/smtpd_sasl_auth_enable=yes' \
              '127.0.0.1:465/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject'
  postfix check 2>"$nd/postfix-check.err" || { cat "$nd/postfix-check.err" >&2; log "FAIL: notify: postfix check"; return 1; }

  printf '%s\n' "global(workDirectory=\"$WORK/rsyslog-notify\")" \
    'module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0" SysSock.Unlink="on")' \
    "mail.*  action(type=\"omfile\" file=\"$OUT/notify-mail.log\" template=\"RSYSLOG_FileFormat\")" > "$nd/rsyslog.conf"
  STARTED=1
  rsyslogd -f "$nd/rsyslog.conf" -i "$RUN/rsyslogd.pid" || { log "FAIL: notify: rsyslogd did not start"; return 1; }
  wait_for 10 "/dev/log" test -S /dev/log
  mkdir -p "$RUN/dovecot"
  dovecot -c "$WORK/dovecot.conf" || { log "FAIL: notify: dovecot did not start"; return 1; }
  wait_for 15 "dovecot auth socket" test -S /var/spool/postfix/private/auth
  postfix start >"$nd/postfix-start.out" 2>&1 || { cat "$nd/postfix-start.out" >&2; log "FAIL: notify: postfix start"; return 1; }
  wait_for 15 "postfix smtpd on 25" listening 25
  wait_for 15 "postfix submission on 587" listening 587
  wait_for 15 "postfix smtps on 465" listening 465

  # channels: the four ways that must work, and two that must fail with their reason
  local from='"from": "postlens@e2e.test"'
  local auth="\"username\": \"$SASL_USER\", \"password\": \"$SASL_PASS\""
  local ca="\"ca_file\": \"$nd/ca.pem\""
  to() { printf '"to": ["%s+%s@local.test"]' "$u" "$1"; }
  printf '%s\n' '{"channels": [' \
    "{\"name\": \"smtp25\", \"type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": 25, \"security\": \"none\", $from, $(to smtp25), \"min_severity\": \"info\"}," \
    "{\"name\": \"starttls\", \"type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": 587, \"security\": \"starttls\", $auth, $ca, $from, $(to starttls)}," \
    "{\"name\": \"smtps\", \"type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": 465, \"security\": \"tls\", $auth, $ca, $from, $(to smtps), \"min_severity\": \"critical\"}," \
    "{\"name\": \"sendmail\", \"type\": \"sendmail\", $from, $(to sendmail)}," \
    "{\"name\": \"untrusted\", \"enabled\": false, \"type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": 587, \"security\": \"starttls\", $auth, $from, $(to untrusted)}," \
    "{\"name\": \"badpass\", \"enabled\": false, \"type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": 465, \"security\": \"tls\", \"username\": \"$SASL_USER\", \"password\": \"not-the-password\", $ca, $from, $(to badpass)}" \
    ']}' > "$nd/channels.json"
  if ! "$POSTLENS" notify-config --workspace "$ws" --set "$nd/channels.json" >"$OUT/notify-config.out" 2>&1; then
    cat "$OUT/notify-config.out" >&2; log "FAIL: notify: notify-config --set refused the channels"; return 1
  fi
  code=0; "$POSTLENS" notify-test --workspace "$ws" --severity critical >"$OUT/notify-test.out" 2>&1 || code=$?
  cat "$OUT/notify-test.out" >&2
  if [ "$code" = 0 ] && [ "$(grep -c '^ok ' "$OUT/notify-test.out")" = 4 ]; then
    log "PASS: notify: notify-test sent through smtp25, starttls, smtps and sendmail (exit 0)"
  else
    log "FAIL: notify: notify-test exit $code, expected 4 ok lines"; rc=1
  fi
  if python3 "$HERE/notify_check.py" --maildir "$home/Maildir" --user "$u" --domain local.test \
       --expect smtp25,starttls,smtps,sendmail --tls starttls,smtps --timeout 30; then
    log "PASS: notify: the four test e-mails arrived in the Maildir (subject, MIME body, TLS as configured)"
  else
    tail -20 "$OUT/notify-mail.log" >&2 || true
    log "FAIL: notify: the test e-mails did not all arrive as expected"; rc=1
  fi
  # failures are reported with the real reason, never with the password
  code=0; out="$("$POSTLENS" notify-test --workspace "$ws" --channel untrusted 2>&1)" || code=$?
  if [ "$code" = 1 ] && grep -q 'UnknownIssuer' <<<"$out"; then
    log "PASS: notify: a certificate from an unknown CA is refused: ${out%%$'\n'*}"
  else
    log "FAIL: notify: untrusted channel: exit $code: $out"; rc=1
  fi
  code=0; out="$("$POSTLENS" notify-test --workspace "$ws" --channel badpass 2>&1)" || code=$?
  if [ "$code" = 1 ] && grep -q 'AUTH PLAIN: 535' <<<"$out" && ! grep -q 'not-the-password' <<<"$out"; then
    log "PASS: notify: a wrong password is reported, without the password: ${out%%$'\n'*}"
  else
    log "FAIL: notify: badpass channel: exit $code: $out"; rc=1
  fi

  postfix_stop
  kill_pidfile "$RUN/dovecot/master.pid"
  sleep 0.5                         # let the last lines reach syslog
  kill_pidfile "$RUN/rsyslogd.pid"
  STARTED=""
}
if [ -n "${POSTLENS:-}" ]; then
  notify_phase || rc=1
fi

# Local protection: Dovecot's auth policy answered by postlens (tests/e2e/protect.sh).
if [ -n "${POSTLENS:-}" ]; then
  if bash "$HERE/protect.sh" "$OUT/protect" 2>"$OUT/protect.log"; then
    log "PASS: protect: $(grep -c 'PASS:' "$OUT/protect.log") checks (see $OUT/protect.log)"
  else
    log "FAIL: protect: $(grep 'FAIL:\|ERROR:' "$OUT/protect.log" | head -3 | tr '\n' ' ')"; rc=1
  fi
fi

if [ "${#RESULTS[@]}" -gt 0 ]; then
  log "summary:"; for r in "${RESULTS[@]}"; do printf '    %s\n' "$r" >&2; done
fi
log "done in $(( $(date +%s) - START_TS ))s: $OUT/{mail-classic.log,mail-rfc3339.log,truth.json}"
exit $rc
