#!/usr/bin/env python3
"""Compare truth.json with a `postlens stats --json` output.

Usage: compare.py TRUTH.json STATS.json
Every key present in the truth is compared, recursively; keys only in the stats are ignored
(the truth is the subset the e2e harness knows exactly). Prints one line per compared leaf
(or only the differences with --quiet) and exits 1 on any mismatch, 2 on unreadable input.
"""
import json
import sys


def walk(truth, stats, path, out):
    if isinstance(truth, dict):
        if not isinstance(stats, dict):
            out.append((path or "<root>", truth, stats, "expected an object"))
            return
        for k in sorted(truth):
            p = "%s.%s" % (path, k) if path else k
            if k not in stats:
                out.append((p, truth[k], None, "missing in stats"))
                continue
            walk(truth[k], stats[k], p, out)
        return
    same = (type(truth) is type(stats) or (isinstance(truth, (int, float)) and isinstance(stats, (int, float))
                                          and not isinstance(stats, bool))) and truth == stats
    out.append((path, truth, stats, None if same else "differs"))


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    quiet = "--quiet" in argv
    if len(args) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        with open(args[0]) as f:
            truth = json.load(f)
        with open(args[1]) as f:
            stats = json.load(f)
    except (OSError, ValueError) as e:
        print("compare.py: cannot read input: %s" % e, file=sys.stderr)
        return 2
    rows = []
    walk(truth, stats, "", rows)
    bad = [r for r in rows if r[3]]
    print("compare %s (truth) vs %s (postlens)" % (args[0], args[1]))
    for path, t, s, why in rows:
        if why or not quiet:
            print("  %-8s %-45s truth=%-6s postlens=%s%s" % ("MISMATCH" if why else "ok", path, json.dumps(t),
                  json.dumps(s), "  (%s)" % why if why and why != "differs" else ""))
    print("%d passed, %d failed" % (len(rows) - len(bad), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
