"""Efficiency benchmark for a finished run: time to first token, per-example latency at batch 1 and
batched (the encoder's time included for the latent), throughput and peak memory, text vs latent.

    .venv/bin/python benchmarks/latency.py runs/quickstart [--n 32] [--batch 16]

Prints a table and writes ``report/efficiency.json`` and ``report/efficiency.md`` in the run folder
(``--out`` writes elsewhere); the run is opened read-only, so its manifest and log stay as they are.
Both methods are the evaluation's own (:mod:`latentwire_eval.methods`): the latent's time covers the
encoder, the message's pack and unpack through the run's codec, and the reader's adapter.
On CPU, peak memory is the process's peak RSS (``ru_maxrss``, monotone over the run); on CUDA it is
``torch.cuda.max_memory_allocated`` reset per measurement.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

from latentwire_eval.methods import METHODS
from latentwire_eval.tables import markdown_table
from latentwire_hf.checkpoint import latest_checkpoint, load_weights
from runner.config import load_experiment
from runner.provenance import git_dirty, git_revision, now
from runner.run import Run


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--n", type=int, default=32, help="evaluation examples to time")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=8, help="tokens generated per example")
    ap.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/report")
    args = ap.parse_args()
    t_start = time.perf_counter()
    exp = load_experiment(args.run_dir / "experiment.toml")
    run = Run(exp, root=args.run_dir.parent, read_only=True)
    _, evaluation = run.data()
    exs = evaluation[: args.n]
    wire = run.build_wire()
    ckpt = latest_checkpoint(run.folder.checkpoints("train"))
    if ckpt is None:
        raise SystemExit(f"{args.run_dir}: no checkpoint; train first")
    load_weights(ckpt, wire)
    wire.eval()
    dev = run.device
    ctx = run.eval_context(wire)
    results: list[dict[str, Any]] = []
    for name, lm in run.readers().items():
        methods = {k: METHODS.get(k)(ctx, name, lm) for k in ("text", "latent")}
        prompt = ctx.plain_prompt(name, lm)

        def generate(
            batch: list[Any],
            method: str,
            new: int,
            prompt: Any = prompt,
            lm: Any = lm,
            methods: Any = methods,
        ) -> None:
            slots, _ = methods[method].slots(batch)
            b = prompt.generation_batch(slots, prompt.tails(batch))
            with torch.no_grad():
                lm.generate(b.inputs_embeds, b.attention_mask, max_new_tokens=new)

        for method in ("text", "latent"):
            generate(exs[:2], method, 1)  # warm-up
            if dev == "cuda":
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            for e in exs:
                generate([e], method, 1)
            _sync(dev)
            ttft = (time.perf_counter() - t0) / len(exs)
            t0 = time.perf_counter()
            for e in exs:
                generate([e], method, args.new_tokens)
            _sync(dev)
            lat1 = (time.perf_counter() - t0) / len(exs)
            t0 = time.perf_counter()
            for i in range(0, len(exs), args.batch):
                generate(exs[i : i + args.batch], method, args.new_tokens)
            _sync(dev)
            total = time.perf_counter() - t0
            results.append(
                {
                    "model": name,
                    "method": method,
                    "n": len(exs),
                    "ttft_s_batch1": ttft,
                    "latency_s_batch1": lat1,
                    f"latency_s_batch{args.batch}": total / len(exs),
                    "throughput_examples_per_s": len(exs) / total,
                    "peak_memory_mb": _peak_mb(dev),
                }
            )
            print(json.dumps(results[-1]))
    meta = {
        "device": torch.cuda.get_device_name(0)
        if dev == "cuda"
        else f"CPU ({platform.processor() or 'x86_64'})",
        "torch_threads": torch.get_num_threads(),
        "new_tokens": args.new_tokens,
        "batch": args.batch,
        "run": str(args.run_dir),
        "git_revision": git_revision(),  # the code that measured
        "git_dirty": git_dirty(),
        "finished": now(),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    out = args.out or run.folder.report_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "efficiency.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [
        f"Efficiency on {meta['device']}, {meta['torch_threads']} threads, {args.new_tokens} new tokens, "
        f"{len(exs)} examples (encoder time included for latent); run `{meta['run']}`, measured by "
        f"`{meta['git_revision']}` (dirty: {meta['git_dirty']}), {meta['finished']}, {meta['wall_s']} s.",
        "",
    ]
    lines += markdown_table(
        [
            "model",
            "method",
            "TTFT b=1 (s)",
            "latency b=1 (s)",
            f"latency b={args.batch} (s/ex)",
            "examples/s",
            "peak MB",
        ],
        [
            [
                r["model"],
                r["method"],
                f"{r['ttft_s_batch1']:.4f}",
                f"{r['latency_s_batch1']:.4f}",
                f"{r[f'latency_s_batch{args.batch}']:.4f}",
                f"{r['throughput_examples_per_s']:.2f}",
                f"{r['peak_memory_mb']:.0f}",
            ]
            for r in results
        ],
    )
    (out / "efficiency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
