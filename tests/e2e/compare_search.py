#!/usr/bin/env python3
"""Compare `postlens search --json` with the per-delivery truth of the e2e run.

usage: compare_search.py TRUTH_DETAIL SEARCH_JSON

Every delivery in the truth (client-facing queue ID + recipient, as the
clients saw them) must appear once in postlens's search output with the same
status, direction and number of deferrals; postlens must report no delivery
the truth does not know. Exit 1 on any difference.
"""
import json
import sys


def main() -> int:
    truth = json.load(open(sys.argv[1]))["deliveries"]
    hits = json.load(open(sys.argv[2]))
    got = {}
    for h in hits:
        key = (h["queue_id"], (h["recipient"] or "").lower())
        if key in got:
            print(f"DUPLICATE in postlens: {key}")
            return 1
        got[key] = h
    bad = 0
    # Known IDs first; messages sent through sendmail/pickup have no
    # client-visible queue ID and are matched by recipient afterwards.
    for t in sorted(truth, key=lambda t: t["client_queue_id"] is None):
        key = (t["client_queue_id"], t["recipient"].lower())
        if t["client_queue_id"] is None:
            cands = [k for k in got if k[1] == key[1]]
            key = cands[0] if len(cands) == 1 else key
        h = got.pop(key, None)
        if h is None:
            print(f"MISSING {key}: truth {t['status']}/{t['direction']}")
            bad += 1
            continue
        for field in ("status", "direction", "deferrals"):
            if h[field] != t[field]:
                print(f"DIFF {key} {field}: truth {t[field]!r} postlens {h[field]!r}")
                bad += 1
    for key, h in got.items():
        print(f"EXTRA in postlens {key}: {h['status']}")
        bad += 1
    print(f"{len(truth)} deliveries compared, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
