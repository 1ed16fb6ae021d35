#!/usr/bin/env bash
# Local protection against a real Dovecot and Postfix: Dovecot's auth policy points at a
# running `postlens run` (settings from `postlens dovecot-conf` for the installed version),
# and IMAP clients and swaks (SMTP AUTH through Postfix, which asks Dovecot) from several
# 127.0.0.x addresses log in: password guessing and login guessing get refused once the
# rule trips (even with the right password), while a legitimate user and an office
# retrying one stale password keep working. A second submission port asks postlens's
# Postfix policy server (check_policy_service) and refuses blocked clients at connect.
#
# Usage:  POSTLENS=/path/to/postlens tests/e2e/protect.sh [OUT_DIR]   (default /tmp/postlens-e2e-protect)
# Needs:  root (Dovecot and Postfix drop privileges), dovecot-core + dovecot-imapd, postfix,
#         swaks, python3; ports 10143, 10345, 10587, 10588, 18089, 18090 and 18080 free on
#         127.0.0.1. Touches nothing outside OUT_DIR and /run/postlens-e2e-protect (Postfix
#         runs as a separate instance with its own config and queue directories there).
set -euo pipefail

OUT="${1:-${E2E_OUT:-/tmp/postlens-e2e-protect}}"
RUN=/run/postlens-e2e-protect
IMAP_PORT=10143 POLICY_PORT=18089 WEB_PORT=18080 KEY=e2e-k3y
AUTH_PORT=10345 SUBMIT_PORT=10587 GUARD_PORT=10588 PF_POLICY_PORT=18090
PFDIR="$RUN/postfix" PFSPOOL="$RUN/postfix-spool" 
START_TS=$(date +%s)
FAILS=0
log()  { printf '[protect %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
pass() { log "PASS: $*"; }
fail() { log "FAIL: $*"; FAILS=$((FAILS + 1)); }
die()  { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "${POSTLENS:-}" ] || die "set POSTLENS to the postlens binary"
command -v dovecot >/dev/null || die "dovecot is not installed (tests/e2e/run.sh installs it)"
command -v postfix >/dev/null || die "postfix is not installed (tests/e2e/run.sh installs it)"
command -v swaks >/dev/null || die "swaks is not installed (tests/e2e/run.sh installs it)"

stop_all() {
  [ -f "$PFDIR/main.cf" ] && postfix -c "$PFDIR" stop >/dev/null 2>&1 || true
  [ -s "$RUN/dovecot/master.pid" ] && kill "$(cat "$RUN/dovecot/master.pid")" 2>/dev/null || true
  [ -n "${PL_PID:-}" ] && kill "$PL_PID" 2>/dev/null || true
  sleep 0.5
}
trap stop_all EXIT
stop_all
rm -rf "$OUT" "$RUN"; mkdir -p "$OUT/logs" "$OUT/mail" "$RUN/dovecot"
chown nobody:nogroup "$OUT/mail"

VERSION="$(dovecot --version | awk '{print $1}')"
log "Dovecot $VERSION"
printf 'alice:{PLAIN}right-horse-battery::::::\n' > "$OUT/users"
chmod 644 "$OUT/users"
cat > "$OUT/dovecot.conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $RUN/dovecot
log_path = $OUT/logs/dovecot.log
auth_verbose = yes
auth_mechanisms = plain login
disable_plaintext_auth = no
ssl = no
auth_failure_delay = 0
mail_location = maildir:$OUT/mail/%n
passdb {
  driver = passwd-file
  args = $OUT/users
}
userdb {
  driver = passwd-file
  args = $OUT/users
  default_fields = uid=nobody gid=nogroup home=$OUT/mail/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# Postfix's SASL (smtpd_sasl_type = dovecot) over TCP.
service auth {
  inet_listener {
    address = 127.0.0.1
    port = $AUTH_PORT
  }
}
EOF
"$POSTLENS" dovecot-conf --dovecot-version "$VERSION" --url "http://127.0.0.1:$POLICY_PORT/dovecot/policy" \
  --policy-key "$KEY" > "$OUT/95-postlens.conf"
cat "$OUT/95-postlens.conf" >> "$OUT/dovecot.conf"
doveconf -n -c "$OUT/dovecot.conf" > "$OUT/doveconf.txt" 2>&1 || { cat "$OUT/doveconf.txt" >&2; die "doveconf refused the config"; }
grep -q "auth_policy_server_url = http://127.0.0.1:$POLICY_PORT/dovecot/policy" "$OUT/doveconf.txt" \
  && pass "doveconf $VERSION accepts the dovecot-conf output" || fail "doveconf output lacks the policy URL"

# Attackers come from 127.0.0.x here: block_loopback is for such labs only.
echo '{"block_loopback": true}' > "$OUT/protect.json"
"$POSTLENS" run --workspace "$OUT/ws" --watch-dir "$OUT/logs" --log-file-patterns dovecot.log \
  --listen "127.0.0.1:$WEB_PORT" --policy-listen "127.0.0.1:$POLICY_PORT" --policy-key "$KEY" \
  --postfix-policy-listen "127.0.0.1:$PF_POLICY_PORT" \
  --protect-config "$OUT/protect.json" 2> "$OUT/postlens.err" &
PL_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$POLICY_PORT) 2>/dev/null && break; sleep 0.1
done
dovecot -c "$OUT/dovecot.conf" || die "dovecot did not start"
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$IMAP_PORT) 2>/dev/null && break; sleep 0.1
done

# One IMAP LOGIN from SRC: prints ok or no.
cat > "$OUT/login.py" <<'EOF'
import imaplib, socket, sys
src, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
class C(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))
c = C("127.0.0.1", port, timeout=30)
try:
    c.login(user, password)
    print("ok")
    c.logout()
except imaplib.IMAP4.error:
    print("no")
EOF
login() { python3 "$OUT/login.py" "$1" "$IMAP_PORT" "$2" "$3"; }

[ "$(login 127.0.0.10 alice right-horse-battery)" = ok ] && pass "legitimate user logs in" || fail "legitimate user refused at start"

# An office device retrying one stale password, 12 times (slowed down, never blocked).
for _ in $(seq 1 12); do login 127.0.0.20 alice old-password >/dev/null; done
[ "$(login 127.0.0.20 alice right-horse-battery)" = ok ] && pass "stale-password office is not blocked" \
  || fail "stale-password office was blocked"

# Password guessing: 12 different passwords, then the right one must be refused too.
for i in $(seq 1 12); do login 127.0.0.30 alice "guess$i" >/dev/null; done
[ "$(login 127.0.0.30 alice right-horse-battery)" = no ] && pass "password guessing from 127.0.0.30 is blocked" \
  || fail "127.0.0.30 still logs in after 12 guessed passwords"

# Login guessing: six users, then alice with the right password must be refused.
for u in admin info root test sales office; do login 127.0.0.31 "$u" password1 >/dev/null; done
[ "$(login 127.0.0.31 alice right-horse-battery)" = no ] && pass "login guessing from 127.0.0.31 is blocked" \
  || fail "127.0.0.31 still logs in after six guessed logins"

[ "$(login 127.0.0.10 alice right-horse-battery)" = ok ] && pass "legitimate user still logs in" \
  || fail "legitimate user refused at the end"
# Dovecot's own account of who postlens refused: the two guessers, nobody else.
refused="$(grep 'policy server refusal' "$OUT/logs/dovecot.log" | grep -o 'policy([^,]*,[0-9.]*' | cut -d, -f2 | sort -u | tr '\n' ' ')"
[ "$refused" = "127.0.0.30 127.0.0.31 " ] && pass "Dovecot logs policy refusals for exactly 127.0.0.30 127.0.0.31" \
  || fail "Dovecot logged policy refusals for: '$refused'"
grep -q 'policy(alice,127.0.0.20,.*tarpit' "$OUT/logs/dovecot.log" && pass "the stale-password office was slowed down (tarpit)" \
  || fail "no tarpit for the stale-password office"
if grep -qi "auth-policy.*\(error\|failed\)" "$OUT/logs/dovecot.log"; then
  fail "Dovecot reports policy server errors: $(grep -i 'auth-policy' "$OUT/logs/dovecot.log" | head -3)"
fi

# --- SMTP AUTH through a real Postfix that asks Dovecot (and so postlens's policy).
# A Postfix instance of its own: config and queue under $RUN, two submission ports
# (10587: Dovecot SASL; 10588: also check_policy_service against postlens, refusing at
# connect), everything else of master.cf.dist left as Debian ships it.
mkdir -p "$PFDIR" "$PFSPOOL" "$RUN/postfix-data"
chown postfix "$RUN/postfix-data"
cp /etc/postfix/dynamicmaps.cf "$PFDIR/" 2>/dev/null || true
[ -d /etc/postfix/dynamicmaps.cf.d ] && cp -r /etc/postfix/dynamicmaps.cf.d "$PFDIR/"
sed -e '/^smtp      inet/d' /usr/share/postfix/master.cf.dist > "$PFDIR/master.cf"
: > "$PFDIR/main.cf"
postconf -c "$PFDIR" -e \
  "compatibility_level = 3.6" "queue_directory = $PFSPOOL" "data_directory = $RUN/postfix-data" \
  "myhostname = protect.test" "inet_interfaces = 127.0.0.1" "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.1/32" "mydestination =" "alias_maps =" "alias_database =" \
  "smtpd_banner = \$myhostname ESMTP postlens-protect" "smtpd_peername_lookup = no" \
  "smtpd_error_sleep_time = 0" "smtpd_soft_error_limit = 100" "smtpd_hard_error_limit = 100" \
  "smtpd_sasl_type = dovecot" "smtpd_sasl_path = inet:127.0.0.1:$AUTH_PORT" \
  "smtpd_relay_restrictions = permit_sasl_authenticated, reject" \
  "syslog_name = postfix-protect" "maillog_file_prefixes = $OUT" "maillog_file = $OUT/logs/postfix.log"
postconf -c "$PFDIR" -F '*/*/chroot = n'
postconf -c "$PFDIR" -M "127.0.0.1:$SUBMIT_PORT/inet=127.0.0.1:$SUBMIT_PORT inet n - n - - smtpd"
postconf -c "$PFDIR" -P "127.0.0.1:$SUBMIT_PORT/inet/smtpd_sasl_auth_enable=yes"
postconf -c "$PFDIR" -M "127.0.0.1:$GUARD_PORT/inet=127.0.0.1:$GUARD_PORT inet n - n - - smtpd"
postconf -c "$PFDIR" -P "127.0.0.1:$GUARD_PORT/inet/smtpd_sasl_auth_enable=yes" \
  "127.0.0.1:$GUARD_PORT/inet/smtpd_delay_reject=no" \
  "127.0.0.1:$GUARD_PORT/inet/smtpd_client_restrictions=check_policy_service,inet:127.0.0.1:$PF_POLICY_PORT"
postfix -c "$PFDIR" check 2>"$OUT/postfix-check.err" || { cat "$OUT/postfix-check.err" >&2; die "postfix check refused the protect instance"; }
postfix -c "$PFDIR" start >"$OUT/postfix-start.out" 2>&1 || { cat "$OUT/postfix-start.out" >&2; die "postfix did not start"; }
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$GUARD_PORT) 2>/dev/null && break; sleep 0.1
done

# One SMTP AUTH from SRC on PORT: prints swaks's transcript; the caller greps it.
smtp_auth() {  # SRC PORT USER PASSWORD
  swaks --server 127.0.0.1 --port "$2" --local-interface "$1" --ehlo client.test --auth LOGIN \
    --auth-user "$3" --auth-password "$4" --quit-after AUTH --timeout 30 2>&1 || true
}
authed() { smtp_auth "$@" | grep -Eq '^<[-~]+ +235 '; }

authed 127.0.0.11 "$SUBMIT_PORT" alice right-horse-battery && pass "SMTP AUTH through Postfix works for the legitimate user" \
  || fail "SMTP AUTH refused for the legitimate user at start"
# An office's mail client retrying one stale password over SMTP.
for _ in $(seq 1 12); do smtp_auth 127.0.0.21 "$SUBMIT_PORT" alice old-password >/dev/null; done
authed 127.0.0.21 "$SUBMIT_PORT" alice right-horse-battery && pass "SMTP: the stale-password office is not blocked" \
  || fail "SMTP: the stale-password office was blocked"
# swaks guessing passwords over SMTP AUTH, then the right one.
for i in $(seq 1 12); do smtp_auth 127.0.0.40 "$SUBMIT_PORT" alice "smtp-guess$i" >/dev/null; done
authed 127.0.0.40 "$SUBMIT_PORT" alice right-horse-battery && fail "127.0.0.40 still authenticates over SMTP after 12 guesses" \
  || pass "SMTP password guessing from 127.0.0.40 is refused"
# The Postfix policy server refuses the guesser at connect on the guarded port …
out="$(swaks --server 127.0.0.1 --port "$GUARD_PORT" --local-interface 127.0.0.40 --ehlo client.test \
  --quit-after MAIL --from a@client.test --timeout 30 2>&1 || true)"
echo "$out" | grep -q '554 5.7.1 .*Too many failed logins' && pass "check_policy_service refuses 127.0.0.40 at connect" \
  || fail "the guarded port did not refuse 127.0.0.40: $(echo "$out" | grep '^<' | tr '\n' ' ')"
# … and lets others through.
authed 127.0.0.11 "$GUARD_PORT" alice right-horse-battery && pass "the guarded port lets the legitimate user in" \
  || fail "the guarded port refused the legitimate user"
refused="$(grep 'policy server refusal' "$OUT/logs/dovecot.log" | grep -o 'policy([^,]*,[0-9.]*' | cut -d, -f2 | sort -u | tr '\n' ' ')"
[ "$refused" = "127.0.0.30 127.0.0.31 127.0.0.40 " ] && pass "Dovecot refused exactly 127.0.0.30 127.0.0.31 127.0.0.40" \
  || fail "Dovecot logged policy refusals for: '$refused'"
m="$(curl -s "http://127.0.0.1:$WEB_PORT/metrics" 2>/dev/null || true)"
echo "$m" | grep -q '^postlens_protect_blocks_total [3-9]' && pass "/metrics counts the blocks" \
  || fail "/metrics lacks the blocks: $(echo "$m" | grep protect_ | tr '\n' ' ')"

log "logs in $OUT"
[ "$FAILS" = 0 ] || { log "$FAILS failure(s)"; exit 1; }
log "all passed"
