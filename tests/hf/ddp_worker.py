"""Run by tests/hf/test_ddp.py under ``torchrun --nproc_per_node 2``: two-process DDP on CPU (gloo)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from accelerate import Accelerator

sys.path.insert(0, str(Path(__file__).parent))
from safetensors.torch import save_file
from test_training import EXAMPLES, HashFeatures

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.tasks import get_task
from latentwire_hf.frozen_lm import load_frozen_lm
from latentwire_hf.training import TrainConfig, Trainer

out = Path(sys.argv[1])
acc = Accelerator(cpu=True)
lm = load_frozen_lm("tiny-llama")
torch.manual_seed(0)
wire = LatentWire(
    LatentWireConfig(interlingua=InterlinguaConfig(d_in=16, d_z=16, n_tokens=3, n_heads=2)),
    {"tiny-llama": (lm.d_model, lm.embed_rms)},
)
cfg = TrainConfig(steps=3, batch_size=2, ckpt_every=3, log_every=1)
t = Trainer(
    wire=wire,
    readers={"tiny-llama": lm},
    features=HashFeatures(),
    task=get_task("sst2"),
    examples=EXAMPLES,
    cfg=cfg,
    ckpt_dir=out / "run" / "checkpoints",
    metrics_path=out / "run" / "train" / "metrics.jsonl",
    accelerator=acc,
)
trained = t.train()
seen = [t._indices(0, 0)]
save_file(
    {k: v.contiguous() for k, v in trained.state_dict().items()}, out / f"rank{acc.process_index}.safetensors"
)
(out / f"rank{acc.process_index}.txt").write_text(f"{acc.num_processes} {seen}")
