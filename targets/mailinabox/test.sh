#!/usr/bin/env bash
# Tests the Mail-in-a-Box addon against a directory laid out like a box
# (/etc/mailinabox.conf, $STORAGE_ROOT/www/custom.yaml, /etc/dovecot/conf.d,
# /etc/nginx/conf.d): install, a second install that changes nothing, the
# re-apply after Mail-in-a-Box's setup ran again, custom.yaml shapes an
# admin may have written, the Dovecot guard both ways, then Debian's nginx
# on the generated location: `nginx -t`, and a real request through nginx
# (TLS) to a running postlens. Uninstall must give back custom.yaml byte for
# byte.
#
#   targets/mailinabox/test.sh   (root; POSTLENS=binary, default target/release/postlens)
set -euo pipefail
cd "$(dirname "$0")/../.."

fails=0
check() {
  local what=$1; shift
  if "$@"; then printf 'ok    %s\n' "$what"; else printf 'FAIL  %s\n' "$what"; fails=$((fails + 1)); fi
}
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }

bin=$(realpath "${POSTLENS:-target/release/postlens}")
[ -x "$bin" ] || { echo "no $bin: make build" >&2; exit 1; }
unset POSTLENS # postlens-miab reads POSTLENS too: let it use the installed one

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
    { apt-get update -qq && env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
fi
# The package starts a stock nginx on port 80; this test runs its own.
systemctl stop nginx 2>/dev/null || service nginx stop >/dev/null 2>&1 || true
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

DIST="$work/dist" DIST_BINARY="$bin" targets/dist.sh x86_64-unknown-linux-gnu >/dev/null
archive=$(echo "$work"/dist/postlens-*.tar.gz)
tar -xzf "$archive" -C "$work"
release=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'postlens-*')

# --- a fake box ---------------------------------------------------------
host=box.example.com
R=$work/box
mkdir -p "$R/etc/dovecot/conf.d" "$R/etc/nginx/conf.d" "$R/home/user-data/www" "$R/var/log" "$R/usr/local/bin"
printf 'root:x:0:0:root:/root:/bin/bash\nuser-data:x:1000:1000::/home/user-data:/bin/bash\n' >"$R/etc/passwd"
printf 'root:x:0:\nadm:x:4:\nuser-data:x:1000:\n' >"$R/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
printf 'root:*::\nadm:*::\n' >"$R/etc/gshadow"
cat >"$R/etc/mailinabox.conf" <<EOF
STORAGE_USER=user-data
STORAGE_ROOT=/home/user-data
PRIMARY_HOSTNAME=$host
PUBLIC_IP=192.0.2.10
PUBLIC_IPV6=
PRIVATE_IP=192.0.2.10
PRIVATE_IPV6=
EOF
printf '#!/bin/bash\ncd /root/mailinabox\nsource setup/start.sh\n' >"$R/usr/local/bin/mailinabox"
echo '# Mail-in-a-Box writes this from custom.yaml (tools/web_update)' >"$R/etc/nginx/conf.d/local.conf"
echo 'auth_mechanisms = plain login' >"$R/etc/dovecot/conf.d/10-auth.conf"
yaml=$R/home/user-data/www/custom.yaml
cat >"$yaml" <<'EOF'
# The admin's own settings (comments must survive).
other.example.org:
    proxies:
        /app: http://127.0.0.1:3000   # the admin's app
    redirects:
        /old: /new
EOF
cp "$yaml" "$work/custom.yaml.orig"
# The entry apply should have made, as Python sees it.
proxied() { # proxied FILE HOST PATH -> prints the URL or nothing
  python3 - "$@" <<'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1])) or {}
print(((d.get(sys.argv[2]) or {}).get("proxies") or {}).get(sys.argv[3]) or "")
EOF
}
snapshot() { find "$R" -printf '%p %s %i %T@\n' | sort; }

echo "--- install"
port=$((20000 + RANDOM % 20000))
install -d "$R/etc/postlens"
printf 'POSTLENS_LISTEN=127.0.0.1:%s\n' "$port" >"$R/etc/postlens/postlens.env"
"$release/mailinabox/setup.sh" --root "$R" "$archive" >"$work/out1"
check "URL printed" grep -q "https://$host/admin/postlens/" "$work/out1"
check "custom.yaml proxies /admin/postlens/ to the listen address" test "$(proxied "$yaml" "$host" /admin/postlens/)" = "http://127.0.0.1:$port/"
check "the admin's entries kept" test "$(proxied "$yaml" other.example.org /app)" = "http://127.0.0.1:3000"
check "the admin's comments kept" grep -q "^# The admin's own settings" "$yaml"
check "postlens installed" cmp -s "$bin" "$R/usr/local/bin/postlens"
check "postlens-miab installed" test -x "$R/usr/local/sbin/postlens-miab"
check "re-apply path unit enabled" test -L "$R/etc/systemd/system/multi-user.target.wants/postlens-miab.path"
if "$bin" dovecot-conf --help >/dev/null 2>&1; then
  check "dovecot-conf present: policy snippet written" test -s "$R/etc/dovecot/conf.d/95-postlens.conf"
else
  check "no dovecot-conf yet: no policy snippet" test ! -e "$R/etc/dovecot/conf.d/95-postlens.conf"
  check "no dovecot-conf yet: no policy drop-in" test ! -e "$R/etc/systemd/system/postlens.service.d/mailinabox.conf"
  check "says the policy is not wired" grep -q 'not wired' "$work/out1"
fi
cp "$yaml" "$work/custom.yaml.installed"

echo "--- second install"
before=$(snapshot)
"$release/mailinabox/setup.sh" --root "$R" "$archive" >/dev/null
after=$(snapshot)
check "second install changes nothing" test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after") || true

echo "--- Mail-in-a-Box's setup runs again"
cp "$R/etc/mailinabox.conf" "$work/m" && mv "$work/m" "$R/etc/mailinabox.conf"
ROOT=$R "$R/usr/local/sbin/postlens-miab" apply >/dev/null
check "re-apply with nothing missing changes nothing" cmp -s "$yaml" "$work/custom.yaml.installed"
cp "$work/custom.yaml.orig" "$yaml" # e.g. the admin restored an old copy
ROOT=$R "$R/usr/local/sbin/postlens-miab" apply >/dev/null
check "re-apply puts a lost entry back" cmp -s "$yaml" "$work/custom.yaml.installed"
check "one entry, not two" test "$(grep -c '/admin/postlens/' "$yaml")" = 1

echo "--- custom.yaml shapes"
cy() { python3 targets/mailinabox/custom_yaml.py "$@"; }
u=http://127.0.0.1:8080/
printf '%s:\n  redirects:\n    /a: /b\n' "$host" >"$work/c1"
cy add "$work/c1" "$host" /admin/postlens/ "$u" >/dev/null
check "domain without proxies (2-space indent)" test "$(proxied "$work/c1" "$host" /admin/postlens/)" = "$u"
check "  its redirects kept" python3 -c "import yaml,sys; assert yaml.safe_load(open(sys.argv[1]))[sys.argv[2]]['redirects'] == {'/a': '/b'}" "$work/c1" "$host"
printf '"%s":\n  proxies:\n    /x: http://127.0.0.1:1/\n\nzzz.example:\n  redirects:\n    /a: /b\n' "$host" >"$work/c2"
cp "$work/c2" "$work/c2.orig"
cy add "$work/c2" "$host" /admin/postlens/ "$u" >/dev/null
check "quoted domain with proxies" test "$(proxied "$work/c2" "$host" /admin/postlens/)" = "$u"
check "  the other proxy kept" test "$(proxied "$work/c2" "$host" /x)" = http://127.0.0.1:1/
check "  add again: unchanged" test "$(cy add "$work/c2" "$host" /admin/postlens/ "$u")" = unchanged
cy remove "$work/c2" "$host" /admin/postlens/ >/dev/null
check "  remove gives the file back" cmp -s "$work/c2" "$work/c2.orig"
printf '%s: {proxies: {/x: http://127.0.0.1:1/}}\n' "$host" >"$work/c3"
refused() { # refused FILE: add exits 3 and leaves FILE as it was
  local rc=0
  cp "$1" "$1.o"
  cy add "$1" "$host" /admin/postlens/ http://x/ >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 3 ] && cmp -s "$1" "$1.o"
}
check "flow style: refused (exit 3), file untouched" refused "$work/c3"
printf '%s:\n    proxies:\n        /admin/postlens/: http://127.0.0.1:9999/\n' "$host" >"$work/c4"
check "an admin's own /admin/postlens/ is not overwritten" refused "$work/c4"

echo "--- Dovecot auth policy guard"
stub=$work/stub-postlens
cat >"$stub" <<'EOF'
#!/bin/sh
# Stand-in for a postlens that has `dovecot-conf`.
if [ "$1" = dovecot-conf ]; then
  [ "${2:-}" = --help ] && exit 0
  printf 'auth_policy_server_url = %s\nauth_policy_hash_nonce = %s\n' "$3" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  exit 0
fi
exit 2
EOF
chmod +x "$stub"
ROOT=$R POSTLENS=$stub "$R/usr/local/sbin/postlens-miab" apply >/dev/null
check "with dovecot-conf: snippet from its output" grep -qx 'auth_policy_server_url = http://127.0.0.1:8089/dovecot/policy' "$R/etc/dovecot/conf.d/95-postlens.conf"
cp "$R/etc/dovecot/conf.d/95-postlens.conf" "$work/snippet"
ROOT=$R POSTLENS=$stub "$R/usr/local/sbin/postlens-miab" apply >/dev/null
check "with dovecot-conf: applying again keeps the snippet (and its nonce)" cmp -s "$work/snippet" "$R/etc/dovecot/conf.d/95-postlens.conf"
check "with dovecot-conf: policy listener switched on" grep -qx 'Environment=POSTLENS_POLICY_LISTEN=127.0.0.1:8089' "$R/etc/systemd/system/postlens.service.d/mailinabox.conf"
if ! "$bin" dovecot-conf --help >/dev/null 2>&1; then
  ROOT=$R "$R/usr/local/sbin/postlens-miab" apply >/dev/null
  check "without it again: snippet removed" test ! -e "$R/etc/dovecot/conf.d/95-postlens.conf"
  check "without it again: drop-in removed" test ! -e "$R/etc/systemd/system/postlens.service.d/mailinabox.conf"
fi

echo "--- nginx with the generated location"
# What Mail-in-a-Box's web_update makes of a custom.yaml proxy entry (a
# location in the domain's TLS server block, with these forwarding headers),
# beside a stand-in for its own /admin/ control panel.
ng=$work/nginx
mkdir -p "$ng/logs" "$ng/conf"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$host" \
  -keyout "$ng/conf/key.pem" -out "$ng/conf/cert.pem" 2>/dev/null
python3 - "$yaml" "$host" >"$ng/conf/locations.conf" <<'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1])) or {}
for path, url in ((d.get(sys.argv[2]) or {}).get("proxies") or {}).items():
    print("location %s {\n  proxy_pass %s;" % (path, url))
    for h, v in (("X-Forwarded-For", "$proxy_add_x_forwarded_for"), ("X-Forwarded-Host", "$http_host"),
                 ("X-Forwarded-Proto", "$scheme"), ("X-Real-IP", "$remote_addr")):
        print("  proxy_set_header %s %s;" % (h, v))
    print("}")
EOF
nport=$((40000 + RANDOM % 20000))
cat >"$ng/conf/nginx.conf" <<EOF
daemon off;
pid $ng/nginx.pid;
error_log $ng/logs/error.log;
events {}
http {
  access_log $ng/logs/access.log;
  client_body_temp_path $ng/tmp;
  proxy_temp_path $ng/tmp;
  server {
    listen 127.0.0.1:$nport ssl;
    server_name $host;
    ssl_certificate $ng/conf/cert.pem;
    ssl_certificate_key $ng/conf/key.pem;
    location /admin/ { return 418; }
    include $ng/conf/locations.conf;
  }
}
EOF
mkdir -p "$ng/tmp"
check "nginx -t accepts the generated location" "$NGINX" -t -q -p "$ng" -c "$ng/conf/nginx.conf"
"$NGINX" -p "$ng" -c "$ng/conf/nginx.conf" &
pids+=($!)
mkdir -p "$work/logs"
: >"$work/logs/mail.log"
"$R/usr/local/bin/postlens" run --workspace "$work/ws" --watch-dir "$work/logs" --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  curl -fsk "https://127.0.0.1:$nport/admin/postlens/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
via() { curl -sk -o "$work/body" -w '%{http_code} %{redirect_url}' --resolve "$host:$nport:127.0.0.1" "https://$host:$nport$1"; }
check "/admin/postlens/healthz through nginx: ok" test "$(via /admin/postlens/healthz; cat "$work/body")" = "200 ok"
# The UI answers with a relative redirect to its first-run page, which must
# stay under the prefix.
r=$(curl -skL -o "$work/body" -w '%{http_code} %{url_effective}' --resolve "$host:$nport:127.0.0.1" "https://$host:$nport/admin/postlens/")
ui_reached() { [ "$r" = "200 https://$host:$nport/admin/postlens/setup" ] && grep -qi '<form' "$work/body"; }
check "/admin/postlens/ leads to the UI's first-run page under the prefix [$r]" ui_reached
check "/admin/postlens redirects to /admin/postlens/" test "$(via /admin/postlens)" = "301 https://$host:$nport/admin/postlens/"
check "/admin/ still goes to the control panel" test "$(via /admin/ | cut -d' ' -f1)" = 418

echo "--- uninstall"
"$release/mailinabox/setup.sh" --root "$R" --uninstall --purge >/dev/null
check "custom.yaml given back byte for byte" cmp -s "$yaml" "$work/custom.yaml.orig"
check "postlens-miab removed" test ! -e "$R/usr/local/sbin/postlens-miab"
check "path unit removed" test ! -e "$R/etc/systemd/system/postlens-miab.path"
check "postlens removed" test ! -e "$R/usr/local/bin/postlens"
check "box files untouched" cmp -s "$R/etc/dovecot/conf.d/10-auth.conf" <(echo 'auth_mechanisms = plain login')

if [ "$fails" -gt 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "mailinabox addon: all checks passed"
