#!/usr/bin/env bash
# Local protection against a real Dovecot: Dovecot's auth policy points at a running
# `postlens run` (settings from `postlens dovecot-conf` for the installed version), and
# IMAP clients from several 127.0.0.x addresses log in: password guessing and login
# guessing get refused once the rule trips (even with the right password), while a
# legitimate user and an office retrying one stale password keep working.
#
# Usage:  POSTLENS=/path/to/postlens tests/e2e/protect.sh [OUT_DIR]   (default /tmp/postlens-e2e-protect)
# Needs:  root (Dovecot drops privileges), dovecot-core + dovecot-imapd, python3;
#         ports 10143, 18089 and 18080 free on 127.0.0.1. Touches nothing outside OUT_DIR
#         and /run/postlens-e2e-protect.
set -euo pipefail

OUT="${1:-${E2E_OUT:-/tmp/postlens-e2e-protect}}"
RUN=/run/postlens-e2e-protect
IMAP_PORT=10143 POLICY_PORT=18089 WEB_PORT=18080 KEY=e2e-k3y
START_TS=$(date +%s)
FAILS=0
log()  { printf '[protect %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*" >&2; }
pass() { log "PASS: $*"; }
fail() { log "FAIL: $*"; FAILS=$((FAILS + 1)); }
die()  { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "${POSTLENS:-}" ] || die "set POSTLENS to the postlens binary"
command -v dovecot >/dev/null || die "dovecot is not installed (tests/e2e/run.sh installs it)"

stop_all() {
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

log "logs in $OUT"
[ "$FAILS" = 0 ] || { log "$FAILS failure(s)"; exit 1; }
log "all passed"
