#!/usr/bin/env python3
"""Adds or removes postlens's reverse-proxy entry in Mail-in-a-Box's
$STORAGE_ROOT/www/custom.yaml, from which Mail-in-a-Box writes its nginx
configuration (`proxies:` of a domain -> `location PATH { proxy_pass URL; }`
in the server block of that domain, with its TLS certificate).

The file is the admin's: it is edited as text, line by line, so comments,
order and formatting stay; only lines ending in the marker are ours, and
`remove` takes away exactly those (a `proxies:` or domain line we added goes
only once nothing else is under it). Flow style (`proxies: {…}`) is not
edited: the script says what to add by hand and exits 3.

    custom_yaml.py add FILE HOST PATH URL
    custom_yaml.py remove FILE HOST PATH

Prints `changed` or `unchanged`. Standard library only (Mail-in-a-Box boxes
have python3); when PyYAML is importable the result is also parsed back and
checked.
"""

import os
import re
import sys
import tempfile

MARKER = "# postlens-miab"


def indent(line):
    return len(line) - len(line.lstrip(" "))


def is_content(line):
    s = line.strip()
    return s != "" and not s.startswith("#")


def key_re(key):
    k = re.escape(key)
    return re.compile(r"^(\s*)(?:%s|'%s'|\"%s\")\s*:(.*)$" % (k, k, k))


def value_is_empty(rest):
    rest = rest.strip()
    return rest == "" or rest.startswith("#")


def block_end(lines, start, parent_indent):
    """Index after the last line belonging to the mapping under lines[start]."""
    i = start + 1
    while i < len(lines):
        if is_content(lines[i]) and indent(lines[i]) <= parent_indent:
            break
        i += 1
    return i


def child_indent(lines, start, end, parent_indent, default):
    for i in range(start + 1, end):
        if is_content(lines[i]) and indent(lines[i]) > parent_indent:
            return indent(lines[i])
    return default


class Manual(Exception):
    pass


def find_host(lines, host):
    rx = key_re(host)
    for i, line in enumerate(lines):
        m = rx.match(line)
        if m and m.group(1) == "":
            if not value_is_empty(m.group(2)):
                raise Manual("'%s:' has an inline value" % host)
            return i
    return None


def find_proxies(lines, h, end, ci):
    rx = key_re("proxies")
    for i in range(h + 1, end):
        m = rx.match(lines[i])
        if m and len(m.group(1)) == ci:
            if not value_is_empty(m.group(2)):
                raise Manual("'proxies:' of the domain is written inline")
            return i
    return None


def add(lines, host, path, url):
    entry_rx = key_re(path)
    h = find_host(lines, host)
    if h is None:
        if lines and lines[-1].strip() != "":
            lines.append("")
        lines += [
            "%s:  %s" % (host, MARKER),
            "    proxies:  %s" % MARKER,
            "        %s: %s  %s" % (path, url, MARKER),
        ]
        return True
    end = block_end(lines, h, 0)
    ci = child_indent(lines, h, end, 0, 4)
    p = find_proxies(lines, h, end, ci)
    if p is None:
        lines[h + 1:h + 1] = [
            "%sproxies:  %s" % (" " * ci, MARKER),
            "%s%s: %s  %s" % (" " * (2 * ci), path, url, MARKER),
        ]
        return True
    pend = block_end(lines, p, ci)
    gi = child_indent(lines, p, pend, ci, 2 * ci)
    want = "%s%s: %s  %s" % (" " * gi, path, url, MARKER)
    for i in range(p + 1, pend):
        m = entry_rx.match(lines[i])
        if m and len(m.group(1)) == gi:
            if lines[i] == want:
                return False
            if lines[i].rstrip().endswith(MARKER):
                lines[i] = want
                return True
            raise Manual("'%s' is already proxied elsewhere by the admin" % path)
    lines.insert(p + 1, want)
    return True


def remove(lines, host, path):
    entry_rx = key_re(path)
    before = len(lines)
    lines[:] = [l for l in lines if not (entry_rx.match(l) and l.rstrip().endswith(MARKER))]
    # Then our `proxies:` and domain lines, once nothing is left under them.
    changed = True
    while changed:
        changed = False
        for i, line in enumerate(lines):
            if not line.rstrip().endswith(MARKER):
                continue
            if not any(is_content(l) for l in lines[i + 1:block_end(lines, i, indent(line))]):
                del lines[i]
                changed = True
                break
    while lines and lines[-1].strip() == "":
        lines.pop()
    return len(lines) != before


def check_parses(text, host, path, url, present):
    try:
        import yaml  # PyYAML: present on Mail-in-a-Box (rtyaml), optional here
    except ImportError:
        return
    doc = yaml.safe_load(text) or {}
    got = ((doc.get(host) or {}).get("proxies") or {}).get(path)
    if present and got != url:
        raise SystemExit("custom_yaml.py: internal error: %s parses to %r" % (path, got))
    if not present and got is not None and got == url:
        raise SystemExit("custom_yaml.py: internal error: %s still proxied" % path)


def main(argv):
    if len(argv) < 5 or argv[1] not in ("add", "remove"):
        sys.stderr.write(__doc__)
        return 2
    op, fn, host, path = argv[1:5]
    url = argv[5] if op == "add" else None
    try:
        with open(fn, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if op == "remove":
            print("unchanged")
            return 0
        text = ""
    lines = text.splitlines()
    try:
        changed = add(lines, host, path, url) if op == "add" else remove(lines, host, path)
    except Manual as e:
        sys.stderr.write(
            "custom_yaml.py: cannot edit %s: %s. Add by hand, under %s: proxies:\n    %s: %s\n"
            % (fn, e, host, path, url or "")
        )
        return 3
    if not changed:
        print("unchanged")
        return 0
    out = "\n".join(lines) + ("\n" if lines else "")
    check_parses(out, host, path, url, op == "add")
    d = os.path.dirname(os.path.abspath(fn))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".custom.yaml.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(out)
    try:
        st = os.stat(fn)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.chown(tmp, st.st_uid, st.st_gid)
    except FileNotFoundError:
        os.chmod(tmp, 0o644)
    os.replace(tmp, fn)
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
