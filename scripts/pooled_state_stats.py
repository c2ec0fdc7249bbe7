"""How much of an lm_pool encoder's pooled output is one vector shared by every text (at initialisation).

    python scripts/pooled_state_stats.py experiments/squad-cpu.toml [--n 48] [--out results/<dir>/pooled_state_stats.json]

Builds the experiment's ``lm_pool`` encoder untrained (the trunk's own layers, a fresh projection),
runs it on the first ``--n`` distinct *training* contexts and reports, for the pooled slots before the
projection (after the trunk's final norm) and for ``Z`` after it, with and without
``[wire.lm_pool] standardize`` (fitted on those texts): the mean pairwise cosine between slots, the share of
their energy in the mean vector, and the largest dimensions' mean magnitude against the median one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from latentwire_core.interlingua import slot_counts
from latentwire_core.tasks import compressed_text
from runner.config import load_experiment


def _stats(v: torch.Tensor) -> dict[str, Any]:
    """``v (N, d)``: mean pairwise cosine, energy share of the mean vector, top-3 dims vs median."""
    vn = torch.nn.functional.normalize(v, dim=-1)
    cos = vn @ vn.T
    off = cos[~torch.eye(len(v), dtype=torch.bool)]
    mu = v.mean(0)
    mag = v.abs().mean(0)
    top = mag.topk(3)
    return {
        "n_slots": len(v),
        "mean_pairwise_cosine": round(float(off.mean()), 4),
        "energy_in_mean_vector": round(float(mu.pow(2).sum() * len(v) / v.pow(2).sum()), 4),
        "top_dims": top.indices.tolist(),
        "top_dim_mean_abs": [round(float(x), 3) for x in top.values],
        "median_dim_mean_abs": round(float(mag.median()), 4),
    }


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("experiment", type=Path)
    ap.add_argument("--n", type=int, default=48, help="distinct training contexts")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    exp = load_experiment(args.experiment)
    if exp.wire.encoder.kind != "lm_pool":
        raise SystemExit(
            f"{args.experiment}: [wire.encoder] kind is {exp.wire.encoder.kind!r}, not 'lm_pool'"
        )
    from latentwire_core.interlingua import build_interlingua
    from latentwire_hf.data import load_examples
    from latentwire_hf.features import build_feature_source
    from latentwire_hf.models import load_causal_lm

    f, w = exp.features, exp.wire
    texts = list(dict.fromkeys(compressed_text(e, w.compress) for e in load_examples(exp.data.task, "train")))
    texts = texts[: args.n]
    source = build_feature_source(f.source, layer=f.layer, max_length=f.max_length)
    feats, mask = source.features(texts)
    cfg = w.to_core(source.feature_dim, content_tokens=False).interlingua
    torch.manual_seed(exp.seed)
    trunk, _ = load_causal_lm(f.source, seed=exp.seed)
    parts = {**w.lm_pool.encoder_kwargs(f.layer), "standardize": True}
    enc = build_interlingua(cfg, lm=trunk, **parts).eval()
    counts = slot_counts(mask, n_tokens=cfg.n_tokens, ratio=cfg.ratio)
    pooled = enc._pooled(feats, mask, counts)
    real = torch.arange(pooled.shape[1])[None] < counts[:, None]
    out: dict[str, Any] = {"experiment": str(args.experiment), "texts": len(texts), "ratio": cfg.ratio}
    out["pooled (after the trunk's final norm)"] = _stats(pooled[real])
    out["Z (fresh projection)"] = _stats(enc.proj(pooled[real]))
    enc.fit_standardization([(feats, mask)])
    std = (pooled[real] - enc.feat_mean) / enc.feat_std
    out["pooled, standardized"] = _stats(std)
    out["Z (fresh projection), standardized"] = _stats(enc.proj(std))
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
