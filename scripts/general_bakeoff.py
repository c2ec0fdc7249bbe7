"""The general wire's short bake-off: two pretraining arms at equal training time, judged by the rule in
results/general-bakeoff/rule.md (written before the arms ran).

    .venv/bin/python scripts/general_bakeoff.py            # run the arms not yet run, then judge
    .venv/bin/python scripts/general_bakeoff.py --judge    # judge the finished arms only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path("results/general-bakeoff")
SECONDS = 900
COMMON = [
    f"pretrain.time_limit_s={SECONDS}",
    'pretrain.snapshot=""',
    "pretrain.curve_every=1000000",  # held-out spans measured once, at the arm's last step
    "pretrain.ckpt_every=50",
]
ARMS = {
    "curriculum": ["pretrain.curriculum=[12, 24, 48]", "pretrain.curriculum_steps=60"],
    "mix": ["pretrain.curriculum=[]", "pretrain.curriculum_steps=0"],
}
TIE = 0.05  # nats


def run(arm: str, py: str) -> None:
    sets = [f"name=general-bakeoff-{arm}", *COMMON, *ARMS[arm]]
    cmd = [py, "-m", "runner", "experiments/general-4x.toml", "--stage", "prepare", "--stage", "pretrain"]
    cmd += [a for s in sets for a in ("--set", s)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    run_dir, dst = Path("runs") / f"general-bakeoff-{arm}", OUT / arm
    dst.mkdir(parents=True, exist_ok=True)
    for rel in ("experiment.toml", "manifest.json", "pretrain/metrics.jsonl", "pretrain/curves.jsonl"):
        shutil.copy(run_dir / rel, dst / Path(rel).name)


def judge() -> dict:
    arms: dict[str, dict] = {}
    for arm in ARMS:
        path = OUT / arm / "curves.jsonl"
        if not path.is_file():
            continue
        last = json.loads(path.read_text().splitlines()[-1])
        readers = sorted({k.split("/")[0] for k in last if k.endswith("/nll")})
        gaps = {r: last[f"{r}/nll_shuffled"] - last[f"{r}/nll"] for r in readers}
        manifest = json.loads((OUT / arm / "manifest.json").read_text())
        arms[arm] = {
            "step": last["step"],
            "gap": gaps,
            "mean_gap": sum(gaps.values()) / len(gaps),
            "nll": {r: last[f"{r}/nll"] for r in readers},
            "em": {r: last[f"{r}/em"] for r in readers},
            "train_seconds": manifest["stages"]["pretrain"].get("train_seconds"),
        }
    out = {"rule": (OUT / "rule.md").read_text(), "arms": arms, "complete": set(arms) == set(ARMS)}
    if out["complete"]:
        a, b = arms["curriculum"]["mean_gap"], arms["mix"]["mean_gap"]
        out["winner"] = "curriculum" if abs(a - b) < TIE or a > b else "mix"
    (OUT / "bakeoff.json").write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", action="store_true")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if not args.judge:
        for arm in ARMS:
            if not (OUT / arm / "curves.jsonl").is_file():
                run(arm, args.python)
    res = judge()
    print(json.dumps({k: v for k, v in res.items() if k != "rule"}, indent=1))


if __name__ == "__main__":
    main()
