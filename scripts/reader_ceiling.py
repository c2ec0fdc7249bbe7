"""Each reader's ceiling at 4x and 16x: soft tokens optimised per example, no encoder (issue 21, section 2).

For every (task, reader, ratio, calibration): the M_i = ceil(n_i / ratio) soft tokens of each of
``--n`` evaluation examples are optimised directly (Adam, ``--steps`` steps) so the reader produces
the gold answer through the task's own prompt (the latent method's path), then the reader answers
greedily from them. n_i is the reader's own token count of the slot text. Writes
``OUT/ceiling.json``, ``OUT/ceiling.md`` and ``OUT/ceiling_curves.png`` (CE against steps).

    .venv/bin/python scripts/reader_ceiling.py --out results/ceiling --n 32 --steps 200
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from latentwire_core.ceiling import CEILING_CALIBRATIONS, budget_m, optimise_slots
from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import get_task
from latentwire_eval.metrics import exact_match, postprocess_answer, squad_f1
from latentwire_eval.stats import bootstrap_ci
from latentwire_eval.tables import markdown_table
from latentwire_hf.data import load_train_eval
from latentwire_hf.frozen_lm import load_frozen_lm


def _commit() -> tuple[str, bool]:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    )
    return rev, dirty


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/ceiling"))
    ap.add_argument("--tasks", nargs="+", default=["recall_k4", "reconstruct_32"])
    ap.add_argument("--readers", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--ratios", nargs="+", type=float, default=[4.0, 16.0])
    ap.add_argument("--calibrations", nargs="+", default=list(CEILING_CALIBRATIONS))
    ap.add_argument("--n", type=int, default=32, help="evaluation examples per cell (one batch)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05, help="Adam step, relative to the embedding RMS")
    args = ap.parse_args()
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    rev, dirty = _commit()
    t_start = time.time()
    rows: list[dict[str, object]] = []
    curves: dict[str, list[tuple[int, float]]] = {}
    cells = len(args.tasks) * len(args.readers) * len(args.ratios) * len(args.calibrations)
    bar = tqdm(total=cells * args.steps, desc="ceiling")
    readers = {r: load_frozen_lm(r) for r in args.readers}
    for task_name in args.tasks:
        task = get_task(task_name)
        _, evaluation, _ = load_train_eval(task_name, eval_limit=args.n, seed=0)
        compress = "context" if task.has_context else "source"
        for reader, lm in readers.items():
            prompt = SlotPrompt(lm, task, compress=compress)
            targets = [lm.tokenize([task.answer_text(e)])[0] for e in evaluation]
            n_text = [len(prompt.text_ids(e)) for e in evaluation]
            for ratio in args.ratios:
                m = [budget_m(n, ratio) for n in n_text]
                for cal in args.calibrations:
                    t0 = time.time()
                    res = optimise_slots(
                        lm,
                        prompt,
                        evaluation,
                        targets,
                        m,
                        calibration=cal,
                        steps=args.steps,
                        lr=args.lr,
                        max_new_tokens=task.max_new_tokens,
                        progress=lambda _s, _l: bar.update(1),
                    )
                    preds = [postprocess_answer(lm.decode(g)) for g in res.generated]
                    em = [exact_match(p, e.answers) for p, e in zip(preds, evaluation, strict=True)]
                    f1 = [squad_f1(p, e.answers) for p, e in zip(preds, evaluation, strict=True)]
                    _, lo, hi = bootstrap_ci(em, n_resamples=2000, seed=0)
                    key = f"{task_name}|{reader}|{ratio:g}x|{cal}"
                    curves[key] = res.curve
                    rows.append(
                        {
                            "task": task_name,
                            "reader": reader,
                            "ratio": ratio,
                            "calibration": cal,
                            "n": len(evaluation),
                            "mean_m": sum(m) / len(m),
                            "mean_text_tokens": sum(n_text) / len(n_text),
                            "em": sum(em) / len(em),
                            "em_ci": [lo, hi],
                            "f1": sum(f1) / len(f1),
                            "exact_ids": sum(res.exact) / len(res.exact),
                            "ce": sum(res.ce) / len(res.ce),
                            "token_acc": sum(res.token_acc) / len(res.token_acc),
                            "seconds": round(time.time() - t0, 1),
                            "examples": [
                                {"id": e.id, "gold": e.answers[0], "pred": p}
                                for e, p in list(zip(evaluation, preds, strict=True))[:3]
                            ],
                        }
                    )
                    tqdm.write(
                        f"{key}: EM {rows[-1]['em']:.3f} token acc {rows[-1]['token_acc']:.3f} "
                        f"CE {rows[-1]['ce']:.3f} ({rows[-1]['seconds']} s)"
                    )
                    _write(args, rows, curves, rev, dirty, t_start)
    bar.close()


def _write(
    args: argparse.Namespace,
    rows: list[dict[str, object]],
    curves: dict[str, list[tuple[int, float]]],
    rev: str,
    dirty: bool,
    t_start: float,
) -> None:
    """Write what is done so far (a long run interrupted still leaves its finished cells)."""
    meta = {
        "commit": rev,
        "git_dirty": dirty,
        "device": "cpu",
        "cpus": torch.get_num_threads(),
        "platform": platform.platform(),
        "steps": args.steps,
        "lr": args.lr,
        "n": args.n,
        "wall_seconds": round(time.time() - t_start, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.out / "ceiling.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "curves": curves}, indent=1)
    )
    lines = [
        "# Each reader's ceiling: soft tokens optimised per example (no encoder)",
        "",
        f"n = {args.n} evaluation examples per cell, Adam {args.steps} steps (lr {args.lr} x embedding RMS), "
        f"greedy answers; commit `{rev[:7]}`{' (dirty)' if dirty else ''}, CPU, {meta['wall_seconds']} s so far. "
        "EM: exact match after the shared QA post-processing (95% bootstrap CI); token acc: share of target "
        "tokens that are the argmax under teacher forcing; CE: nats per target token (EOS included).",
        "",
    ]
    lines += markdown_table(
        ["task", "reader", "ratio", "mean M", "calibration", "EM [95% CI]", "F1", "token acc", "CE", "s"],
        [
            [
                r["task"],
                r["reader"],
                f"{r['ratio']:g}x",
                f"{r['mean_m']:.1f}",
                r["calibration"],
                f"{r['em']:.3f} [{r['em_ci'][0]:.3f}, {r['em_ci'][1]:.3f}]",  # type: ignore[index]
                f"{r['f1']:.3f}",
                f"{r['token_acc']:.3f}",
                f"{r['ce']:.3f}",
                r["seconds"],
            ]
            for r in rows
        ],
    )
    (args.out / "ceiling.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tasks = sorted({str(r["task"]) for r in rows})
        fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
        for ax, t in zip(axes[0], tasks, strict=True):
            for key, c in curves.items():
                if key.startswith(t + "|"):
                    ax.plot([s for s, _ in c], [v for _, v in c], label=key.split("|", 1)[1])
            ax.set(title=t, xlabel="Adam step", ylabel="CE (nats / target token)", yscale="log")
            ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(args.out / "ceiling_curves.png", dpi=110)
        plt.close(fig)
    except ImportError:  # matplotlib is a dev dependency; the JSON and markdown stand alone
        pass


if __name__ == "__main__":
    main()
