"""The small committed runs of the seed-parity issue (22), one after another, each collected into results/.

    .venv/bin/python scripts/parity_runs.py --list             # what would run
    .venv/bin/python scripts/parity_runs.py                    # every run not collected yet, in order
    .venv/bin/python scripts/parity_runs.py qwen-sst2-text     # one (or several) by name

Each run is an ordinary experiment file with ``--set`` overrides (recorded in its ``experiment.toml``), run
by the runner (so it resumes where it stopped), then copied by ``scripts/collect_result.py`` into
``results/<name>/`` with its manifest, metrics, summary and ``run.json`` (commit, device, wall time).
Settings are fixed here before any of them ran:

* the receiver-side options on the SST-2 quickstart recipe (120 steps, the first 300 dev sentences),
  each beside its controls: latent refiner, latent adapters (layers 4 and 8 of every reader), and the
  coprocessor (a linear adapter, as a deep prefix needs);
* the Qwen reader's text baselines (no wire trained: ``prepare``, ``evaluate``, ``report``) on SST-2 (300),
  SQuAD (300 questions across the 48 dev articles) and ``recall_k4`` (300);
* the SST-2 quickstart recipe with the three readers, and with the byte encoder (their experiment files);
* the other five tasks on the quickstart recipe (120 steps, the same readers and methods beside the
  controls): AG News and TREC as the quickstart is (M = 1), GSM8K, XSum and HotpotQA with M = 8 soft tokens
  over up to 256 feature tokens (their sources are long); n = 100 drawn with the seed from each evaluation
  split (HotpotQA: the 30 offline evaluation examples, all of them, stated as such in its summary).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from collect_result import collect

OPTION_METHODS = 'eval.methods=["text", "no_context", "latent", "latent_shuffled", "token_budget"]'
EVAL_ONLY = ["--stage", "prepare", "--stage", "evaluate", "--stage", "report"]
QWEN = 'models.names=["qwen2.5-coder-0.5b"]'

RUNS: dict[str, tuple[str, list[str], list[str]]] = {
    # name: (experiment file, --set overrides, extra runner arguments)
    "quickstart-refiner": ("experiments/quickstart.toml", ["wire.refiner_layers=2", OPTION_METHODS], []),
    "quickstart-latent-adapters": (
        "experiments/quickstart.toml",
        ["wire.latent_adapter_layers=[4, 8]", OPTION_METHODS],
        [],
    ),
    "quickstart-coprocessor": (
        "experiments/quickstart.toml",
        ['wire.inject="coprocessor"', 'wire.adapter="linear"', OPTION_METHODS],
        [],
    ),
    "qwen-sst2-text": (
        "experiments/quickstart.toml",
        [QWEN, 'eval.methods=["text", "no_context", "token_budget", "llmlingua"]'],
        EVAL_ONLY,
    ),
    "qwen-recall-k4-text": (
        "experiments/recall.toml",
        [QWEN, 'eval.methods=["text", "no_context", "token_budget", "llmlingua", "mean_pool"]'],
        EVAL_ONLY,
    ),
    "qwen-squad-text": (
        "experiments/squad-cpu.toml",
        [QWEN, 'eval.methods=["text", "no_context", "token_budget", "llmlingua"]'],
        EVAL_ONLY,
    ),
    "quickstart-three-readers": ("experiments/quickstart-three-readers.toml", [], []),
    "quickstart-bytes": ("experiments/quickstart-bytes.toml", [], []),
}

TASK_METHODS = 'eval.methods=["text", "no_context", "latent", "latent_shuffled", "token_budget", "llmlingua"]'
LONG_SOURCE = ["wire.encoder.n_tokens=8", "features.max_length=256"]
for _task, _n, _extra in (
    ("agnews", 100, []),
    ("trec", 100, []),
    ("gsm8k", 100, LONG_SOURCE),
    ("xsum", 100, LONG_SOURCE),
    ("hotpotqa", 30, LONG_SOURCE),
):
    RUNS[f"quickstart-{_task}"] = (
        "experiments/quickstart.toml",
        [
            f"data.task={_task}",
            f"data.eval_limit={_n}",
            f"data.min_eval={_n}",
            'data.eval_sampling="seeded"',
            *_extra,
            TASK_METHODS,
        ],
        [],
    )


def run(name: str, py: str) -> None:
    toml, sets, extra = RUNS[name]
    cmd = [
        py,
        "-m",
        "runner",
        toml,
        "--set",
        f"name={name}",
        *[a for s in sets for a in ("--set", s)],
        *extra,
    ]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    print("collected into", collect(Path("runs") / name, Path("results") / name), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "names", nargs="*", help=f"runs to do (default: every one not in results/): {', '.join(RUNS)}"
    )
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown runs {unknown}; known: {', '.join(RUNS)}")
    names = args.names or [n for n in RUNS if not (Path("results") / n / "metrics.json").is_file()]
    if args.list:
        print("\n".join(names))
        return
    for n in names:
        run(n, args.python)


if __name__ == "__main__":
    main()
