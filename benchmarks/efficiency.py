"""Efficiency of a ratio wire against its text prompt, by prompt length: time to first token, batched
throughput, training-step overhead and peak memory.

    .venv/bin/python benchmarks/efficiency.py runs/squad-cpu-4x [--lengths 128,256,512,1024]

``WIRE`` is a run folder or a saved wire (``wire.json``); weights come from ``wire.safetensors``, the
last train checkpoint or the last pretrain checkpoint, in that order, and without any the untrained
wire is timed (compute does not depend on the weights' values; the output says which). The wire is
opened read-only: nothing in the run folder changes but ``report/efficiency_lengths.{json,md}``
(``--out`` writes elsewhere).

For each reader and each length L (in that reader's tokens) the compressed part is L tokens of
real SQuAD dev contexts (articles joined), the question a real SQuAD question:

* **TTFT, batch 1**: text = the reader's prefill of the full prompt and its first token; latent =
  the *sender's* whole path (frozen trunk layers and trained layers of the encoder, uncached;
  pooling; codec pack and unpack of the message) plus the reader's adapter, prefill of the
  ``ceil(L / ratio)`` soft tokens and question, and first token. Median of ``--reps`` after a warm-up.
* **Throughput**: ``--batch`` examples, ``--new-tokens`` greedy tokens, examples per second.
* **Training-step overhead**: one optimiser step of the wire (encoder layers and adapter forward and
  backward, reader forward and backward, AdamW; trunk features cached as the trainer caches them)
  divided by the frozen reader's own forward and backward on the same sequence (the same soft
  tokens as a leaf tensor). Median of ``--reps``.
* **Peak memory**: the process's peak RSS on CPU (``ru_maxrss``, monotone over the run), or
  ``torch.cuda.max_memory_allocated`` per measurement on CUDA.

The encoder's ``max_length`` and the cap on M are raised to fit the longest L (so that a 1024-token
prompt really is compressed at the wire's ratio); neither changes a weight.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch

from latentwire_core.message import pack, unpack
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import Segment
from latentwire_core.tasks import Example, get_task
from latentwire_eval.tables import markdown_table
from latentwire_hf.checkpoint import latest_checkpoint, load_weights
from latentwire_hf.config import TrainConfig
from latentwire_hf.data import load_examples
from latentwire_hf.features import CachedFeatureSource, build_feature_source
from latentwire_hf.frozen_lm import load_frozen_lm
from latentwire_hf.objectives import TaskObjective, slot_rows
from latentwire_hf.pretrained import PretrainedWire, WireSpec, build_wire


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(fn: Callable[[], Any], reps: int, device: str) -> float:
    """Median wall seconds of ``fn`` over ``reps`` calls after one warm-up call."""
    fn()
    out = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _lm_encoder_overrides(items: list[str], spec: WireSpec) -> dict[str, Any]:
    """``--lm-encoder KEY=VALUE`` pairs, checked against the wire's own lm_encoder keys."""
    if items and spec.lm_encoder is None:
        raise SystemExit("--lm-encoder needs an lm_pool wire (this one has no lm_encoder)")
    allowed = sorted({*(spec.lm_encoder or {}), "standardize"} - {"start_layer"})
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in allowed:
            raise SystemExit(f"--lm-encoder {item!r}: expected KEY=VALUE with KEY one of {allowed}")
        low = raw.lower()
        out[key] = low == "true" if low in ("true", "false") else int(raw) if raw.isdigit() else raw
    return out


def _load(
    path: Path, max_len: int, device: str, lm_encoder: list[str] | None = None
) -> tuple[PretrainedWire, str]:
    spec = WireSpec.read(path / "wire.json")
    over = _lm_encoder_overrides(lm_encoder or [], spec)
    if over:  # a what-if: the wire's encoder with these settings, untrained (its tensors differ)
        spec = attrs.evolve(spec, lm_encoder={**(spec.lm_encoder or {}), **over})
    ratio = float(spec.wire["interlingua"]["ratio"])
    if ratio <= 0:
        raise SystemExit(f"{path}: a fixed-M wire (ratio = 0); this benchmark compares by prompt length")
    inter = {**spec.wire["interlingua"], "n_tokens": math.ceil(max_len / ratio)}
    spec = attrs.evolve(
        spec,
        wire={**spec.wire, "interlingua": inter},
        features={**spec.features, "max_length": max_len},
        fingerprint="",
    )
    wire = build_wire(spec)
    weights = "untrained (timing does not depend on the weights' values)"
    candidates = [path / "checkpoints", path / "pretrain" / "checkpoints"]
    if over:
        weights = f"untrained, lm_encoder {over} (timing does not depend on the weights' values)"
    elif (path / "wire.safetensors").is_file():
        from safetensors.torch import load_file

        wire.load_state_dict(load_file(str(path / "wire.safetensors")))
        weights = str(path / "wire.safetensors")
    else:
        for c in candidates if not over else []:
            ckpt = latest_checkpoint(c)
            if ckpt is not None:
                load_weights(ckpt, wire)
                weights = str(ckpt)
                break
    return PretrainedWire(spec, wire, device=device), weights


def _contexts(lm: Any, n_tokens: int, n: int) -> list[str]:
    """``n`` texts of exactly ``n_tokens`` reader tokens cut from consecutive SQuAD dev contexts."""
    exs = load_examples("squad", "eval")
    ids: list[int] = []
    for c in dict.fromkeys(e.context for e in exs):
        ids += lm.tokenize([" " + c])[0]
        if len(ids) >= n_tokens * n:
            break
    return [lm.tokenizer.decode(ids[i * n_tokens : (i + 1) * n_tokens]) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("wire", type=Path, help="a run folder or a saved wire (holds wire.json)")
    ap.add_argument("--lengths", default="128,256,512,1024", help="prompt lengths in reader tokens")
    ap.add_argument("--readers", default="", help="comma-separated; default: every reader of the wire")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="examples per batch (throughput, training step)")
    ap.add_argument("--new-tokens", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=None, help="default: WIRE/report")
    ap.add_argument(
        "--train-step-only", action="store_true", help="time only the training step (no TTFT, no throughput)"
    )
    ap.add_argument(
        "--lm-encoder",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="time the wire with this lm_encoder setting instead (n_layers=1, train=lora, lora_rank=8; untrained)",
    )
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    dev = args.device
    pw, weights = _load(
        args.wire, max(lengths) * 2, dev, args.lm_encoder
    )  # Gemma's L tokens may be more SmolLM2 tokens
    spec = pw.spec
    if spec.compress != "context" or get_task(spec.task).name not in ("squad", "squad_v2"):
        raise SystemExit(
            f"{args.wire}: needs a SQuAD wire that compresses the context (compress = 'context')"
        )
    task = get_task(spec.task)
    ratio = float(spec.wire["interlingua"]["ratio"])
    cached = pw.features()
    source = cached.source  # the uncached trunk: the sender's real cost
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    readers = args.readers.split(",") if args.readers else pw.readers
    rows: list[dict[str, Any]] = []
    for name in readers:
        lm = load_frozen_lm(name, device=dev)
        prompt = SlotPrompt(lm, task, compress="context")
        for n_tok in lengths:
            texts = _contexts(lm, n_tok, args.batch)
            exs = [
                Example(id=f"b{i}", task=task.name, source=t, question=question, context=t, answers=("x",))
                for i, t in enumerate(texts)
            ]
            tails = prompt.tails(exs)
            assert tails is not None

            @torch.no_grad()
            def latent(
                k: int,
                new: int,
                exs: list[Example] = exs,
                lm: Any = lm,
                name: str = name,
                p: Any = prompt,
                tl: Any = tails,
            ) -> None:
                feats, mask = source.features([e.context for e in exs[:k]])
                feats, mask = feats.to(dev), mask.to(dev)
                counts = pw.wire.counts(mask)
                z = pw.wire.encode(feats, mask, counts)
                msgs = [pack(z[i, : int(c)], pw.codec, pw.fingerprint) for i, c in enumerate(counts.tolist())]
                soft = [
                    pw.wire.to_model(
                        unpack(
                            m, fingerprint=pw.fingerprint, d_z=pw.wire.cfg.interlingua.d_z, codec=pw.codec
                        )[0][None].to(dev),
                        name,
                    )[0]
                    for m in msgs
                ]
                b = p.generation_batch(soft, tl[:k])
                lm.generate(b.inputs_embeds, b.attention_mask, max_new_tokens=new)

            @torch.no_grad()
            def text(
                k: int, new: int, exs: list[Example] = exs, lm: Any = lm, p: Any = prompt, tl: Any = tails
            ) -> None:
                b = p.generation_batch([p.text_ids(e) for e in exs[:k]], tl[:k])
                lm.generate(b.inputs_embeds, b.attention_mask, max_new_tokens=new)

            m_i = math.ceil(
                len(cached.source.tokenizer(texts[0], add_special_tokens=False)["input_ids"]) / ratio
            )
            for method, fn in () if args.train_step_only else (("text", text), ("latent", latent)):
                if dev == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                ttft = _timed(functools.partial(fn, 1, 1), args.reps, dev)
                batched = _timed(functools.partial(fn, args.batch, args.new_tokens), args.reps, dev)
                rows.append(
                    {
                        "reader": name,
                        "prompt_tokens": n_tok,
                        "method": method,
                        "slot_tokens": n_tok if method == "text" else m_i,
                        "ttft_s": ttft,
                        "throughput_examples_per_s": args.batch / batched,
                        "peak_memory_mb": _peak_mb(dev),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            rows.append(
                {"reader": name, "prompt_tokens": n_tok, **_train_overhead(pw, lm, name, exs, dev, args.reps)}
            )
            print(json.dumps(rows[-1]), flush=True)
        del lm
    _write(args, rows, weights, ratio, dev)


def _train_overhead(
    pw: PretrainedWire, lm: Any, name: str, exs: list[Example], dev: str, reps: int
) -> dict[str, Any]:
    """Seconds of one wire training step and of the reader's own forward + backward on the same sequence."""
    with tempfile.TemporaryDirectory() as tmp:
        f = pw.spec.features
        feats = build_feature_source(
            f["source"],
            layer=f["layer"],
            max_length=pw.features().source.max_length,
            cache_dir=Path(tmp),
            device=dev,
        )
        assert isinstance(feats, CachedFeatureSource)
        task = get_task(pw.spec.task)
        obj = TaskObjective(
            readers={name: lm},
            features=feats,
            task=task,
            examples=exs,
            cfg=TrainConfig(),
            compress="context",
        )
        idx = list(range(len(exs)))
        feats.warm([e.context for e in exs])  # the trainer reads cached trunk features
        wire = pw.wire.train()
        opt = torch.optim.AdamW([p for p in wire.parameters() if p.requires_grad], lr=1e-6)

        def step() -> None:
            loss, _ = obj(wire, idx, [name], torch.device(dev))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        x, m = feats.features([e.context for e in exs])
        with torch.no_grad():
            soft, counts = wire(x.to(dev), m.to(dev), [name])
            soft = soft[name]
        leaf: list[Segment] = [r.detach().clone().requires_grad_(True) for r in slot_rows(soft, counts)]

        def reader_only() -> None:
            loss, _ = obj.answer_losses(idx, [name], {name: leaf}, torch.device(dev))
            loss.backward()

        gen = torch.Generator().manual_seed(0)
        cotangent = torch.randn(soft.shape, generator=gen).to(dev)  # a fixed gradient for the wire's output

        def wire_only() -> None:  # the sender's trained part: encoder layers, pooling, adapter
            out, _ = wire(x.to(dev), m.to(dev), [name])
            out[name].backward(cotangent)

        t_step = _timed(step, reps, dev)
        t_reader = _timed(reader_only, reps, dev)
        t_wire = _timed(wire_only, reps, dev)
        t_opt = _timed(opt.step, reps, dev)  # on the gradients wire_only left
        opt.zero_grad(set_to_none=True)
        wire.eval()
    return {
        "method": "train_step",
        "train_step_s": t_step,
        "reader_fwd_bwd_s": t_reader,
        "wire_fwd_bwd_s": t_wire,
        "optimizer_s": t_opt,
        "train_step_overhead": t_step / t_reader,
        "batch": len(exs),
    }


def _write(
    args: argparse.Namespace, rows: list[dict[str, Any]], weights: str, ratio: float, dev: str
) -> None:
    meta = {
        "wire": str(args.wire),
        "weights": weights,
        "ratio": ratio,
        "device": torch.cuda.get_device_name(0)
        if dev == "cuda"
        else f"CPU ({platform.machine()}), {torch.get_num_threads()} threads",
        "lm_encoder_overrides": args.lm_encoder,
        "reps": args.reps,
        "batch": args.batch,
        "new_tokens": args.new_tokens,
        "torch": torch.__version__,
    }
    out = args.out or args.wire / "report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "efficiency_lengths.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    gen = [r for r in rows if r["method"] in ("text", "latent")]
    key = {(r["reader"], r["prompt_tokens"], r["method"]): r for r in gen}
    lines = [
        f"Efficiency of {meta['wire']} (ratio {ratio:g}) on {meta['device']}; weights: {weights}.",
        f"Median of {args.reps} after a warm-up; throughput at batch {args.batch} with {args.new_tokens} new tokens.",
        "",
    ]
    table = []
    for r in rows:
        if r["method"] != "train_step":
            continue
        t, lat = (
            key.get((r["reader"], r["prompt_tokens"], "text")),
            key.get((r["reader"], r["prompt_tokens"], "latent")),
        )
        table.append(
            [
                r["reader"],
                r["prompt_tokens"],
                lat["slot_tokens"] if lat else math.ceil(r["prompt_tokens"] / ratio),
                f"{t['ttft_s']:.3f}" if t else "–",
                f"{lat['ttft_s']:.3f}" if lat else "–",
                f"{lat['ttft_s'] / t['ttft_s']:.2f}×" if t and lat else "–",  # "–": --train-step-only
                f"{t['throughput_examples_per_s']:.2f}" if t else "–",
                f"{lat['throughput_examples_per_s']:.2f}" if lat else "–",
                f"{r['train_step_s']:.3f}",
                f"{r['reader_fwd_bwd_s']:.3f}",
                f"{r['wire_fwd_bwd_s']:.3f}",
                f"{r['optimizer_s']:.3f}",
                f"{r['train_step_overhead']:.2f}×",
                f"{max(t['peak_memory_mb'], lat['peak_memory_mb']):.0f}" if t and lat else "–",
            ]
        )
    lines += markdown_table(
        [
            "reader",
            "prompt tokens",
            "slot tokens (latent)",
            "TTFT text (s)",
            "TTFT latent (s)",
            "latent ÷ text",
            "text ex/s",
            "latent ex/s",
            "train step (s)",
            "reader fwd+bwd (s)",
            "wire fwd+bwd (s)",
            "AdamW (s)",
            "step overhead",
            "peak MB",
        ],
        table,
    )
    (out / "efficiency_lengths.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
