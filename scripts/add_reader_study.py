"""The add-a-reader study: a reader trained onto a frozen encoder against the jointly trained one.

    python scripts/add_reader_study.py --joint runs/quickstart-m8 --alone runs/quickstart-smollm2 \\
        --added runs/quickstart-add-gemma3 --old smollm2-135m --new gemma3-270m \\
        --out results/quickstart-add-reader

Reads the three runs' ``eval/predictions.parquet`` and writes ``metrics.json`` and ``summary.md``:
the new reader's latent through the frozen encoder (``--added``) against the same reader trained
jointly with the encoder (``--joint``), paired by example (difference, McNemar, ratio with a paired
BCa CI); the old reader's latent answers in the added run against the run that trained it alone
(they must be identical: its encoder and adapter were frozen); and the text / token-budget
references of each reader. The headline metric of the runs is used unless ``--metric`` says another.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from latentwire_eval.compare import paired_runs
from latentwire_eval.tables import markdown_table


def _load(run: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return pd.read_parquet(run / "eval" / "predictions.parquet"), json.loads(
        (run / "eval" / "metrics.json").read_text()
    )


def _value(metrics: dict[str, Any], model: str, method: str, metric: str) -> dict[str, Any] | None:
    for r in metrics["results"]:
        if (r["model"], r["method"], r["metric"]) == (model, method, metric) and r.get(
            "subset", "all"
        ) == "all":
            return {k: r[k] for k in ("value", "ci_low", "ci_high", "n")}
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    for k in ("joint", "alone", "added", "out"):
        ap.add_argument(f"--{k}", type=Path, required=True)
    ap.add_argument("--old", required=True, help="the reader trained with the encoder (in --alone)")
    ap.add_argument("--new", required=True, help="the reader added by adapter only (in --added)")
    ap.add_argument("--metric", default="")
    args = ap.parse_args()
    (pj, _), (pa, _), (pd_, md) = _load(args.joint), _load(args.alone), _load(args.added)
    metric = args.metric or md["headline"]
    new = paired_runs(pd_, pj, model_a=args.new, metric=metric)
    old_kept = paired_runs(pd_, pa, model_a=args.old, metric=metric)
    same_outputs = bool(
        (
            pd_[(pd_.model == args.old) & (pd_.method == "latent")]
            .set_index("example_id")["output"]
            .sort_index()
            == pa[(pa.model == args.old) & (pa.method == "latent")]
            .set_index("example_id")["output"]
            .sort_index()
        ).all()
    )
    old_vs_joint = paired_runs(pa, pj, model_a=args.old, metric=metric)
    # the encoder was frozen: the added run must send exactly the messages the alone run sends
    from latentwire_hf.pretrained import PretrainedWire

    texts = list(dict.fromkeys(pd_[pd_.method == "latent"]["source"].astype(str)))
    wa, wd = PretrainedWire.from_pretrained(args.alone), PretrainedWire.from_pretrained(args.added)
    msgs_a, msgs_d = wa.encode(texts), wd.encode(texts)
    messages = {
        "texts": len(texts),
        "identical": sum(x == y for x, y in zip(msgs_a, msgs_d, strict=True)),
        "fingerprint_alone": wa.fingerprint.hex(),
        "fingerprint_added": wd.fingerprint.hex(),
        "mean_bytes": sum(map(len, msgs_d)) / len(msgs_d),
    }
    refs = {
        m: {meth: _value(md, m, meth, metric) for meth in ("text", "token_budget")}
        for m in (args.old, args.new)
    }
    out = {
        "metric": metric,
        "runs": {"joint": str(args.joint), "alone": str(args.alone), "added": str(args.added)},
        "new_reader": args.new,
        "old_reader": args.old,
        "new_frozen_encoder_vs_joint": new,
        "old_added_run_vs_alone": {**old_kept, "same_outputs": same_outputs},
        "old_alone_vs_joint": old_vs_joint,
        "messages_added_vs_alone": messages,
        "references_in_added_run": refs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(out, indent=1))

    def ci(d: dict[str, Any]) -> str:
        return f"{d['value']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"

    dd = new["diff"]

    def baselines(reader: str) -> list[str]:
        """The reader's text and token-budget scores (reference rows), or "–"."""
        return [ci(refs[reader][m]) if refs[reader][m] else "–" for m in ("text", "token_budget")]

    lines = [
        f"# Adding a reader with the encoder frozen ({metric}, n = {new['n']})",
        "",
        f"{args.new} trained onto the frozen encoder of a run that trained {args.old} alone ({args.added}), "
        f"against {args.new} trained jointly with the encoder ({args.joint}). Same examples, paired by id.",
        "",
        *markdown_table(
            ["reader", "run", f"latent {metric} [95% CI]", "text", "token budget"],
            [
                [args.new, "jointly trained", ci(new["b"]), "–", "–"],
                [args.new, "**adapter only, encoder frozen**", ci(new["a"]), *baselines(args.new)],
                [args.old, "jointly trained", ci(old_vs_joint["b"]), "–", "–"],
                [
                    args.old,
                    "trained alone (frozen in the added run)",
                    ci(old_vs_joint["a"]),
                    *baselines(args.old),
                ],
            ],
        ),
        "",
        f"- {args.new}, frozen encoder ÷ joint: **{new['ratio']['value']:.1%}** "
        f"[{new['ratio']['ci_low']:.1%}, {new['ratio']['ci_high']:.1%}] (paired BCa bootstrap; ARC-Encoder: 85% for OLMo); "
        f"difference {dd['diff']:+.3f} [{dd['ci_low']:+.3f}, {dd['ci_high']:+.3f}], bootstrap p {dd['p_value']:.3g}"
        + (f", McNemar p {new['p_mcnemar']:.3g}" if new["p_mcnemar"] is not None else "")
        + ".",
        f"- {args.old} in the added run vs the run that trained it alone: identical answers on "
        f"{old_kept['identical']:.0%} of examples (same output strings: {same_outputs}); the messages the two runs "
        f"send for the {messages['texts']} evaluation texts: {messages['identical']} of {messages['texts']} "
        f"byte-identical ({messages['mean_bytes']:.0f} bytes each on average; encoder fingerprint "
        f"{messages['fingerprint_added']} in both: {messages['fingerprint_alone'] == messages['fingerprint_added']}).",
        f"- {args.old} trained alone vs jointly: difference {old_vs_joint['diff']['diff']:+.3f} "
        f"[{old_vs_joint['diff']['ci_low']:+.3f}, {old_vs_joint['diff']['ci_high']:+.3f}]"
        + (f", McNemar p {old_vs_joint['p_mcnemar']:.3g}" if old_vs_joint["p_mcnemar"] is not None else "")
        + ".",
    ]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
