"""Are two run folders the same run? ``python scripts/compare_runs.py RUN_A RUN_B [--out DIR]``.

``RUN_B`` may be a collected result (``results/<name>/``, which keeps the training log as
``train_metrics.jsonl`` and ``metrics.json`` but no checkpoints or predictions): then the parts it holds
are compared and the others are listed as not compared.

Compares what a refactor must not change, leaving out only wall-clock measurements: the training
logs (``train/metrics.jsonl`` without ``examples_per_s``), every checkpoint file byte for byte (but
``trainer.json``'s ``train_seconds`` (wall clock) and ``python_random``, the process-wide ``random`` state that training never draws
from — a cold run's model conversion moves it — and ``digests.json``, which hashes that file),
``wire.json``, every prediction column but ``latency_s``, and every leaf of ``eval/metrics.json``
but latencies and seconds. Prints one line per part and writes ``compare.json`` / ``compare.md``
to ``--out`` when given. Exit status 0 when everything compared is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TIMING = ("latency", "seconds", "examples_per_s")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checkpoint_file(path: Path) -> Any:
    if path.name == "digests.json":
        return None
    if path.name == "trainer.json":
        return {
            k: v
            for k, v in json.loads(path.read_text()).items()
            if k != "python_random" and not any(t in k for t in TIMING)  # train_seconds: wall clock
        }
    return _digest(path)


def _found(run: Path, *names: str) -> Path | None:
    """The first of ``names`` (paths under ``run``) that exists: a run folder's or a collected result's."""
    return next((run / n for n in names if (run / n).is_file()), None)


def _log(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def _leaves(x: Any, path: str = "") -> dict[str, Any]:
    if isinstance(x, dict):
        return {
            k2: v2
            for k, v in x.items()
            if not any(t in k for t in TIMING)
            for k2, v2 in _leaves(v, f"{path}.{k}").items()
        }
    if isinstance(x, list):
        return {k2: v2 for i, v in enumerate(x) for k2, v2 in _leaves(v, f"{path}[{i}]").items()}
    return {path: x}


def _same(x: Any, y: Any) -> bool:
    return bool(x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y))


def compare(a: Path, b: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"a": str(a), "b": str(b)}
    missing: list[str] = []
    logs = [_found(r, "train/metrics.jsonl", "train_metrics.jsonl") for r in (a, b)]
    if logs[0] and logs[1]:
        la, lb = _log(logs[0]), _log(logs[1])
        out["training_log"] = {"records": [len(la), len(lb)], "identical": la == lb}
    else:
        missing.append("training_log")
    if (a / "checkpoints").is_dir() and (b / "checkpoints").is_dir():
        ckpts = sorted(p.relative_to(a) for p in (a / "checkpoints").rglob("*") if p.is_file())
        differ = [
            str(p)
            for p in ckpts
            if not (b / p).is_file() or _checkpoint_file(a / p) != _checkpoint_file(b / p)
        ]
        out["checkpoints"] = {
            "files": len(ckpts),
            "differing": differ,
            "identical": not differ and bool(ckpts),
        }
    else:
        missing.append("checkpoints")
    if (a / "wire.json").is_file() and (b / "wire.json").is_file():
        out["wire_json"] = {"identical": _digest(a / "wire.json") == _digest(b / "wire.json")}
    else:
        missing.append("wire_json")
    preds = [_found(r, "eval/predictions.parquet", "predictions.parquet") for r in (a, b)]
    if preds[0] and preds[1]:
        pa, pb = (pd.read_parquet(p) for p in preds)
        cols = []
        for c in pa.columns:
            if c == "latency_s":
                continue
            x, y = pa[c], pb.get(c)
            if y is None or len(x) != len(y):
                cols.append(c)
            elif x.dtype.kind == "f":
                if not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True):
                    cols.append(c)
            elif x.map(repr).tolist() != y.map(repr).tolist():
                cols.append(c)
        out["predictions"] = {"rows": [len(pa), len(pb)], "differing_columns": cols, "identical": not cols}
    else:
        missing.append("predictions")
    ma, mb = (
        _leaves(json.loads(p.read_text()))
        for p in (_found(r, "eval/metrics.json", "metrics.json") for r in (a, b))
        if p is not None
    )
    bad = sorted(k for k in set(ma) | set(mb) if not _same(ma.get(k), mb.get(k)))
    out["metrics"] = {"leaves": len(ma), "differing": bad, "identical": not bad}
    out["identical"] = all(v["identical"] for v in out.values() if isinstance(v, dict))
    out["not_compared"] = missing
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = compare(args.a, args.b)
    lines = [f"# {args.a} vs {args.b}", ""]
    for part, v in res.items():
        if isinstance(v, dict):
            detail = {k: w for k, w in v.items() if k != "identical"}
            lines.append(f"- {part}: {'identical' if v['identical'] else 'DIFFERENT'} {json.dumps(detail)}")
    if res["not_compared"]:
        lines.append(
            f"- not compared (the collected result does not keep them): {', '.join(res['not_compared'])}"
        )
    lines.append(
        f"\n**{'identical' if res['identical'] else 'different'}** (wall-clock measurements left out)"
    )
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare.json").write_text(json.dumps(res, indent=1) + "\n")
        (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    return 0 if res["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
