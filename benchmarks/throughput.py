"""Training-step throughput at real sizes, with no download (issue 23): randomly initialised readers
built from the published configurations of Llama-3.2-1B, Qwen2.5-1.5B and Gemma3-1B, and the sender of
``experiments/squad.toml`` (SmolLM2-135M's shape, trunk features cached at layer 2, 26 layers trained).

    python benchmarks/throughput.py --out DIR                 # real sizes, CUDA, bf16 (scripts/device/run.sh)
    python benchmarks/throughput.py --size tiny --out DIR     # the same code at tiny size (the dry run, CPU)

One training step is what the trainer does for ``experiments/squad.toml`` at its batch (32) and lengths
(512 context tokens at 4x -> 128 soft tokens, then the question and the answer in text): cached trunk
features -> the trained encoder layers -> ratio pooling -> d_z -> the reader's adapter (``mlp``) ->
RMS calibration -> the frozen reader's forward and backward with the soft tokens in its input -> answer
CE (first-token weight 0.5) + top-8 KD against cached teacher logits (weight 0.5) -> AdamW on the wire.

Per reader it writes: step seconds (median of ``--reps`` after ``--warmup``), tokens per second (the
reader's sequence tokens plus the encoder's context tokens), peak GPU memory, model FLOPs utilisation
against ``--peak-tflops`` (H200 dense bf16: 989), and the ratio of the step to the frozen reader's own
forward and backward on the same sequences (the soft tokens a leaf tensor, no encoder). Model FLOPs count
the matrix products only: 6 x trained parameters x context tokens for the encoder and 4 x reader
parameters x sequence tokens for the frozen reader (forward plus the backward to its input; no weight
gradients), attention's quadratic term left out (it is under 10% at these lengths).

Writes ``throughput.json`` and ``throughput.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, Qwen2Config

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_eval.tables import markdown_table
from latentwire_hf.encoders.lm_pool import LMPoolEncoder

# Published shapes (config.json of each model), no weights.
READERS: dict[str, Callable[[], Any]] = {
    "llama-3.2-1b": lambda: LlamaConfig(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        vocab_size=128256,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
    ),
    "qwen2.5-1.5b": lambda: Qwen2Config(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
    ),
    "gemma3-1b": lambda: Gemma3TextConfig(
        hidden_size=1152,
        intermediate_size=6912,
        num_hidden_layers=26,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=256,
        vocab_size=262144,
        max_position_embeddings=32768,
        sliding_window=512,
        rope_theta=1000000.0,
        query_pre_attn_scalar=256,
    ),
}
SENDER = lambda: LlamaConfig(  # noqa: E731  SmolLM2-135M
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    tie_word_embeddings=True,
)
# experiments/squad.toml: batch 32, 512 context tokens at 4x, [features] layer 2, 26 trained layers
REAL = {
    "batch": 32,
    "context": 512,
    "question": 24,
    "answer": 8,
    "ratio": 4,
    "start": 2,
    "layers": 26,
    "d_z": 256,
}
TINY = {"batch": 2, "context": 32, "question": 6, "answer": 4, "ratio": 4, "start": 1, "layers": 1, "d_z": 16}
SHRINK = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "vocab_size": 512,
    "head_dim": 16,
}


def _shrink(cfg: Any) -> Any:
    for k, v in SHRINK.items():
        setattr(cfg, k, v)
    cfg.num_attention_heads, cfg.num_key_value_heads = 4, 2
    if hasattr(cfg, "query_pre_attn_scalar"):
        cfg.query_pre_attn_scalar = 16
    return cfg


def _timed(fn: Callable[[], Any], reps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _n_params(m: torch.nn.Module, trainable: bool) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable)


def measure(
    name: str, shape: dict[str, int], device: torch.device, dtype: torch.dtype, args: Any
) -> dict[str, Any]:
    tiny = args.size == "tiny"
    rcfg = READERS[name]()
    scfg = SENDER()
    if tiny:
        rcfg, scfg = _shrink(rcfg), _shrink(scfg)
    for c in (rcfg, scfg):
        c._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        reader = AutoModelForCausalLM.from_config(rcfg, dtype=dtype).eval().requires_grad_(False)
        sender = AutoModelForCausalLM.from_config(scfg, dtype=torch.float32)
    b, ctx, q, a = shape["batch"], shape["context"], shape["question"], shape["answer"]
    m = ctx // shape["ratio"]
    icfg = InterlinguaConfig(
        kind="lm_pool", d_in=scfg.hidden_size, d_z=shape["d_z"], n_tokens=m, ratio=float(shape["ratio"])
    )
    encoder = LMPoolEncoder(icfg, lm=sender, start_layer=shape["start"], n_layers=shape["layers"])
    del sender
    emb = reader.get_input_embeddings()
    rms = float(emb.weight.float().pow(2).mean().sqrt())
    key = name.replace(".", "_")  # an adapter's name may not hold "."
    wire = LatentWire(LatentWireConfig(interlingua=icfg), {key: (rcfg.hidden_size, rms)}, encoder=encoder).to(
        device
    )
    opt = torch.optim.AdamW([p for p in wire.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator(device="cpu").manual_seed(0)
    feats = torch.randn(b, ctx, scfg.hidden_size, generator=g).to(device)  # cached trunk states
    mask = torch.ones(b, ctx, dtype=torch.bool, device=device)
    text_ids = torch.randint(0, rcfg.vocab_size, (b, q + a), generator=g).to(device)
    t_ids = torch.randint(0, rcfg.vocab_size, (b, a, 8), generator=g).to(device)  # cached top-8 teacher
    t_logits = torch.randn(b, a, 8, generator=g).to(device)
    seq = m + q + a
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)

    def losses(soft: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([soft.to(dtype), emb(text_ids)], dim=1)
        logits = reader(inputs_embeds=inputs, attention_mask=torch.ones(b, seq, device=device)).logits
        ans = logits[:, m + q - 1 : seq - 1].float()  # (B, a, V) predicting the answer tokens
        tgt = text_ids[:, q:]
        ce = F.cross_entropy(ans.reshape(-1, ans.shape[-1]), tgt.reshape(-1), reduction="none").view(b, a)
        loss = ce.mean() + 0.5 * ce[:, 0].mean()
        logp = F.log_softmax(ans, dim=-1).gather(-1, t_ids)
        kd = -(F.softmax(t_logits, dim=-1) * logp).sum(-1).mean()
        return loss + 0.5 * kd

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            soft = wire(feats, mask, [key]).soft[key]
            loss = losses(soft)
        loss.backward()
        opt.step()

    leaf = torch.randn(b, m, rcfg.hidden_size, generator=g).to(device) * rms

    def reader_only() -> None:
        x = leaf.clone().requires_grad_(True)
        with autocast:
            loss = losses(x)
        loss.backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_step = _timed(step, args.reps, args.warmup, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    t_reader = _timed(reader_only, args.reps, args.warmup, device)
    n_enc = _n_params(wire.encoder, trainable=True)
    n_reader = _n_params(reader, trainable=False)
    flops = 6 * n_enc * b * ctx + 4 * n_reader * b * seq
    return {
        "reader": name,
        "reader_params": n_reader,
        "encoder_trained_params": n_enc,
        "batch": b,
        "context_tokens": ctx,
        "soft_tokens": m,
        "reader_seq": seq,
        "step_s": t_step,
        "reader_fwd_bwd_s": t_reader,
        "overhead": t_step / t_reader,
        "tokens_per_s": b * (seq + ctx) / t_step,
        "peak_gib": peak,
        "model_tflops": flops / 1e12,
        "mfu": flops / t_step / (args.peak_tflops * 1e12),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", choices=["real", "tiny"], default="real")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--readers", nargs="+", default=list(READERS), choices=list(READERS))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="the device's dense bf16 peak")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA device")
    dtype = torch.bfloat16 if device.type == "cuda" or args.size == "tiny" else torch.float32
    shape = REAL if args.size == "real" else TINY
    rows = []
    for name in args.readers:
        rows.append(measure(name, shape, device, dtype, args))
        print(json.dumps(rows[-1]), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    gpu = (
        torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or platform.machine()
    )
    result = {
        "size": args.size,
        "device": gpu,
        "dtype": str(dtype),
        "torch": torch.__version__,
        "shape": shape,
        "peak_tflops": args.peak_tflops,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"# Training-step throughput ({args.size}, {gpu}, {dtype}, torch {torch.__version__})",
        "",
        f"batch {shape['batch']}, {shape['context']} context tokens at {shape['ratio']}x, "
        f"{shape['layers']} trained encoder layers; median of {args.reps} steps after {args.warmup}",
        "",
    ]
    lines += markdown_table(
        ["reader", "params", "step s", "reader fwd+bwd s", "overhead", "tokens/s", "peak GiB", "MFU"],
        [
            [
                r["reader"],
                f"{r['reader_params'] / 1e9:.2f}B",
                f"{r['step_s']:.3f}",
                f"{r['reader_fwd_bwd_s']:.3f}",
                f"{r['overhead']:.2f}x",
                f"{r['tokens_per_s']:.0f}",
                f"{r['peak_gib']:.1f}",
                f"{r['mfu']:.1%}",
            ]
            for r in rows
        ],
    )
    (args.out / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
