"""Compare every quality number of two quickstart metrics.json files, mapping the labels the issue-7 refactor renamed (model joint/oracle -> "all readers" with method joint/oracle; "<features> probe" -> "no reader").

python scripts/compare_quickstart.py OLD/metrics.json NEW/metrics.json   # exit 0: every value equal
"""

import json
import sys
from pathlib import Path

old, new = (json.loads(Path(a).read_text()) for a in sys.argv[1:3])


def key_old(r):
    m, k = r["model"], r["method"]
    if m in ("joint", "oracle"):
        m, k = "all readers", m
    if m.endswith(" probe"):
        m = "no reader"
    return (m, k, r.get("subset", "all"), r["metric"])


def key_new(r):
    return (r["model"], r["method"], r.get("subset", "all"), r["metric"])


o = {key_old(r): r for r in old["results"]}
n = {key_new(r): r for r in new["results"]}
assert set(o) == set(n), set(o) ^ set(n)
fields = [
    "value",
    "ci_low",
    "ci_high",
    "n",
    "slot_tokens",
    "wire_bytes",
    "token_compression",
    "byte_compression",
]
diff = [(k, f, o[k].get(f), n[k].get(f)) for k in o for f in fields if o[k].get(f) != n[k].get(f)]
print(f"{len(o)} (model, method, subset, metric) results compared on {fields}: {len(diff)} differ")
for d in diff[:20]:
    print("  DIFF", d)


def ckey(c):
    return (c["model"], c["latent_vs"], c["metric"])


oc = {ckey(c): c for c in old["comparisons"]}
nc = {ckey(c): c for c in new["comparisons"]}
assert set(oc) == set(nc)
cf = ["diff", "ci_low", "ci_high", "p_value", "p_mcnemar", "p_holm", "n"]
cd = [(k, f) for k in oc for f in cf if oc[k].get(f) != nc[k].get(f)]
print(f"{len(oc)} paired comparisons compared on {cf}: {len(cd)} differ")
for d in cd[:20]:
    print("  DIFF", d)
sys.exit(1 if diff or cd else 0)
