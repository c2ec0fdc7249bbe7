"""The training objectives (latentwire_hf.objectives) on tiny models: content items and targets, pretraining resume, the cached teacher, the content probe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import TEXTS
from tiny_wire import content_setup as _content_setup

from latentwire_core import IGNORE, LatentWire, gather_at, kd_positions
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import with_eos
from latentwire_core.tasks import Example, get_task
from latentwire_hf.checkpoint import latest_checkpoint
from latentwire_hf.objectives import PretrainConfig, TeacherCache, content_items
from latentwire_hf.training import Trainer


def test_content_items_come_in_both_modes_with_aligned_targets() -> None:
    pc = PretrainConfig(encode_words=6, continue_words=4, rec_fraction=0.5)
    items = content_items(TEXTS, pc)
    assert {it.mode for it in items} == {"rec", "cont"}
    for it in items:
        joined = " ".join(TEXTS)
        if it.mode == "rec":
            assert it.target == it.encoded
        else:  # the continuation is the text that follows the encoded words
            assert (it.encoded + it.target) in joined


def test_reconstruction_and_continuation_targets_are_aligned(tmp_path: Path, tiny_llama) -> None:
    wire, obj, _ = _content_setup(tmp_path, {"tiny-llama": tiny_llama})
    idx = [0, 1]
    feats, mask = obj.features.features([obj.items[i].encoded for i in idx])
    counts = wire.counts(mask)
    soft = wire(feats, mask, ["tiny-llama"]).soft["tiny-llama"]
    rows = obj.batch_rows(wire, "tiny-llama", soft, counts, idx)
    from latentwire_core.slots import assemble_batch

    targets = [obj.targets["tiny-llama"][i] for i in idx]
    b = assemble_batch(rows, embed=tiny_llama.embed, answers=targets, pad_side="right", pad_id=0)
    for r, i in enumerate(idx):
        bos = 1 if tiny_llama.special_ids["bos"] is not None else 0
        marker_at = bos + int(counts[r])  # [BOS] soft tokens <rec|cont> target
        which = obj.items[i].mode
        torch.testing.assert_close(b.inputs_embeds[r, marker_at], wire.content_token("tiny-llama", which)[0])
        assert bool(
            (b.labels[r, : marker_at + 1] == IGNORE).all()
        )  # BOS, soft tokens and the marker: never targets
        n = len(targets[r])
        assert (
            b.labels[r, marker_at + 1 : marker_at + 1 + n].tolist() == targets[r]
        )  # unshifted, shifted once in core
    loss, stats = obj(wire, idx, ["tiny-llama"], torch.device("cpu"))
    assert torch.isfinite(loss) and "tiny-llama/ce" in stats
    loss.backward()
    assert wire.content["tiny-llama"].grad is not None  # <rec>/<cont> learn


def test_pretraining_resumes_bit_identically(tmp_path: Path, tiny_llama, tiny_gemma3) -> None:
    readers = {"tiny-llama": tiny_llama, "tiny-gemma3": tiny_gemma3}

    def run(folder: Path, stop_after: int | None = None) -> LatentWire:
        wire, obj, pc = _content_setup(tmp_path / "feat", readers)
        t = Trainer(
            wire=wire,
            readers=readers,
            cfg=pc,
            ckpt_dir=folder / "pretrain" / "checkpoints",
            metrics_path=folder / "pretrain" / "metrics.jsonl",
            objective=obj,
        )
        return t.train(stop_after=stop_after)

    ref = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=2)  # killed after the step-2 checkpoint
    assert latest_checkpoint(tmp_path / "b" / "pretrain" / "checkpoints") is not None
    resumed = run(tmp_path / "b")
    for (k, v), (_, w) in zip(ref.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    rows = (tmp_path / "b" / "pretrain" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 4  # one row per step, none duplicated by the resume


def test_cached_teacher_equals_a_fresh_teacher_forward(tiny_llama) -> None:
    task = get_task("squad")
    prompt = SlotPrompt(tiny_llama, task, compress="context")
    exs = [
        Example(
            id=f"q{i}", task="squad", source="s", question=f"what is {i}?", context=TEXTS[i], answers=(a,)
        )
        for i, a in enumerate(["Broncos", "Smiljan", "the sea"])
    ]
    answers = [with_eos(tiny_llama.tokenize([task.answer_text(e)])[0], prompt.eos) for e in exs]
    cache = TeacherCache(k_positions=3, top_k=5)
    first = cache.get("tiny-llama", tiny_llama, prompt, exs[:2], answers[:2], max_text_tokens=512)
    both = cache.get("tiny-llama", tiny_llama, prompt, exs, answers, max_text_tokens=512)
    assert cache.computed == 3  # the first two were not recomputed
    # a fresh forward of each example alone, at the gathered positions
    for e, a, (ids, vals) in zip(exs, answers, both, strict=True):
        b, h = prompt.hidden([prompt.text_ids(e)], [a], prompt.tails([e]))
        pos = kd_positions(b.labels, 3)
        logits = tiny_llama.logits(gather_at(h, pos)).float()
        top = logits.topk(5, dim=-1)
        torch.testing.assert_close(vals, top.values, atol=1e-5, rtol=1e-4)
        assert torch.equal(ids, top.indices)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(first, both[:2], strict=True))


def test_content_probe_swaps_latents_between_rows_and_draws_no_rng(tmp_path: Path, tiny_llama) -> None:
    wire, obj, _ = _content_setup(tmp_path, {"tiny-llama": tiny_llama})
    idx = [0, 1, 2]
    feats, mask = obj.features.features([obj.items[i].encoded for i in idx])
    counts = wire.counts(mask)
    soft = wire(feats, mask, ["tiny-llama"]).soft["tiny-llama"]
    own = obj.batch_rows(wire, "tiny-llama", soft, counts, idx)
    other = obj.batch_rows(wire, "tiny-llama", soft, counts, idx, shuffle=True)
    for r in range(3):  # row r reads row r+1's soft tokens (its own M), after its own marker
        torch.testing.assert_close(other[r][1], own[(r + 1) % 3][1])
        torch.testing.assert_close(other[r][2], own[r][2])
    rng = torch.get_rng_state()
    wire.train()
    stats = obj.probe(wire, idx, ["tiny-llama"], torch.device("cpu"))
    assert wire.training and torch.equal(rng, torch.get_rng_state())  # mode restored, no RNG drawn
    _, plain = obj(wire, idx, ["tiny-llama"], torch.device("cpu"))
    _, swapped = obj(wire, idx, ["tiny-llama"], torch.device("cpu"), shuffle=True)
    assert stats["tiny-llama/probe_ce"] == pytest.approx(plain["tiny-llama/ce"])
    assert stats["tiny-llama/ce_shuffled"] == pytest.approx(swapped["tiny-llama/ce"])
    assert stats["tiny-llama/content_gap"] == pytest.approx(swapped["tiny-llama/ce"] - plain["tiny-llama/ce"])
    assert obj.probe(wire, [0], ["tiny-llama"], torch.device("cpu")) == {}  # one row: nothing to swap


def test_pretraining_logs_the_content_probe(tmp_path: Path, tiny_llama) -> None:
    import json

    wire, obj, pc = _content_setup(tmp_path / "feat", {"tiny-llama": tiny_llama})
    Trainer(
        wire=wire,
        readers={"tiny-llama": tiny_llama},
        cfg=pc,
        ckpt_dir=tmp_path / "pretrain" / "checkpoints",
        metrics_path=tmp_path / "pretrain" / "metrics.jsonl",
        objective=obj,
    ).train()
    rows = [json.loads(r) for r in (tmp_path / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert all("tiny-llama/content_gap" in r and "tiny-llama/ce_shuffled" in r for r in rows)
