"""The content recipe on tiny models: lm_pool encoder, layer-k features, content pretraining, cached teacher."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import TEXTS
from tiny_wire import content_setup as _content_setup
from tiny_wire import feature_source as _feature_source

from latentwire_core import IGNORE, InterlinguaConfig, LatentWire, gather_at, kd_positions
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import with_eos
from latentwire_core.tasks import Example, get_task
from latentwire_hf.checkpoint import latest_checkpoint
from latentwire_hf.encoders.lm_pool import LMPoolEncoder
from latentwire_hf.features import LMHiddenFeatureSource
from latentwire_hf.models import KNOWN_MODELS
from latentwire_hf.objectives import PretrainConfig, TeacherCache, content_items
from latentwire_hf.training import Trainer


def test_layer_k_features_equal_hugging_face_hidden_states(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, tok = KNOWN_MODELS["tiny-llama"]()
    ref_model, _ = KNOWN_MODELS["tiny-llama"]()
    ref_model.load_state_dict(model.state_dict())
    src = LMHiddenFeatureSource(model, tok, name="tiny-llama", layer=1, max_length=64)
    assert len(src._body.layers) == 1  # the layers above k are dropped, not run
    feats, mask = src.features(TEXTS[:2])
    for i, text in enumerate(TEXTS[:2]):
        ids = tok([text], add_special_tokens=False, return_tensors="pt")["input_ids"][
            :, :64
        ]  # truncated alike
        ref = ref_model(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
        torch.testing.assert_close(feats[i][mask[i]], ref, atol=1e-5, rtol=1e-4)
    # a byte-level tokenizer: 64 tokens read = the first 64 characters
    assert src.read_text(TEXTS[0] * 10) == (TEXTS[0] * 10)[:64]


def _lm_pool(ratio: float = 4.0, **kw: object) -> LMPoolEncoder:
    torch.manual_seed(0)
    lm, _ = KNOWN_MODELS["tiny-llama"]()
    cfg = InterlinguaConfig(kind="lm_pool", d_in=32, d_z=16, n_tokens=64, ratio=ratio)
    return LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("causal", [False, True])
def test_lm_pool_is_invariant_to_padding_content_and_amount(causal: bool) -> None:
    enc = _lm_pool(causal=causal).eval()
    lengths = [5, 13, 9]
    feats = torch.randn(3, 16, 32)
    mask = torch.zeros(3, 16, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    feats[~mask] = float("nan")
    z = enc(feats, mask)  # (B, M_max, d_z)
    assert z.shape == (3, 4, 16) and bool(torch.isfinite(z).all())  # ceil(13 / 4) = 4
    for i, n in enumerate(lengths):
        c = -(-n // 4)
        solo = enc(feats[i, :n][None], torch.ones(1, n, dtype=torch.bool))[0]
        torch.testing.assert_close(solo, z[i, :c], atol=1e-5, rtol=1e-4)
        assert bool((z[i, c:] == 0).all())


def test_lm_pool_non_causal_attention_sees_later_tokens() -> None:
    enc, causal = _lm_pool(ratio=1.0).eval(), _lm_pool(ratio=1.0, causal=True).eval()
    x = torch.randn(1, 6, 32)
    y = x.clone()
    y[0, 5] += 1.0  # change only the last token
    m = torch.ones(1, 6, dtype=torch.bool)
    assert not torch.allclose(enc(x, m)[0, 0], enc(y, m)[0, 0])  # the first slot sees the last token
    torch.testing.assert_close(causal(x, m)[0, 0], causal(y, m)[0, 0])  # ... only when non-causal


def test_lm_pool_trains_copies_and_leaves_the_lm_alone() -> None:
    lm, _ = KNOWN_MODELS["tiny-llama"]()
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    cfg = InterlinguaConfig(kind="lm_pool", d_in=32, d_z=16, n_tokens=8, ratio=2.0)
    enc = LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=1)
    assert all(p.requires_grad for p in enc.parameters())
    enc(torch.randn(2, 6, 32), torch.ones(2, 6, dtype=torch.bool)).sum().backward()
    torch.optim.SGD(enc.parameters(), lr=1.0).step()
    assert all(torch.equal(v, lm.state_dict()[k]) for k, v in before.items())
    lora = LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=1, train="lora", lora_rank=2)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith(("norm", "proj")) for n in trainable)
    with pytest.raises(ValueError, match="do not fit"):
        LMPoolEncoder(cfg, lm=lm, start_layer=1, n_layers=2)


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
    lms = {"tiny-llama": tiny_llama, "tiny-gemma3": tiny_gemma3}

    def run(folder: Path, stop_after: int | None = None) -> LatentWire:
        wire, obj, pc = _content_setup(tmp_path / "feat", lms)
        t = Trainer(
            wire=wire,
            lms=lms,
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
        lms={"tiny-llama": tiny_llama},
        cfg=pc,
        ckpt_dir=tmp_path / "pretrain" / "checkpoints",
        metrics_path=tmp_path / "pretrain" / "metrics.jsonl",
        objective=obj,
    ).train()
    rows = [json.loads(r) for r in (tmp_path / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert all("tiny-llama/content_gap" in r and "tiny-llama/ce_shuffled" in r for r in rows)


def test_standardization_centres_and_scales_pooled_slots_on_training_texts(tmp_path: Path) -> None:
    fs = _feature_source(tmp_path)
    plain = _lm_pool()
    assert not any("feat_" in k for k in plain.state_dict())  # older checkpoints keep their exact keys
    enc = _lm_pool(standardize=True).eval()
    enc.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(
        enc(*fs.features(TEXTS)), plain.eval()(*fs.features(TEXTS))
    )  # identity before fit
    n = enc.fit_standardization([fs.features(TEXTS[:2]), fs.features(TEXTS[2:])])
    feats, mask = fs.features(TEXTS)
    counts = enc(feats, mask).abs().sum(-1).ne(0).sum(1)  # real slots per text
    assert n == int(counts.sum())
    pooled = enc._pooled(feats, mask, counts)
    real = torch.arange(pooled.shape[1])[None] < counts[:, None]
    rows = (pooled[real] - enc.feat_mean) / enc.feat_std  # (N, d_in)
    torch.testing.assert_close(rows.mean(0), torch.zeros(32), atol=1e-4, rtol=0)
    torch.testing.assert_close(rows.std(0, unbiased=False), torch.ones(32), atol=1e-3, rtol=0)
    assert {"feat_mean", "feat_std"} <= set(enc.state_dict())  # saved with the checkpoint and the wire
    # still invariant to padding: the statistics are per dimension, applied per slot
    z = enc(feats, mask)
    solo = enc(*fs.features(TEXTS[1:2]))[0]
    torch.testing.assert_close(solo, z[1, : solo.shape[0]], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="without standardize"):
        plain.fit_standardization([fs.features(TEXTS)])


def test_the_hf_encoder_kind_is_known_to_config_validation_without_torch() -> None:
    """latentwire_hf.config makes lm_pool a known encoder name, read from encoders/lm_pool.py's source."""
    import subprocess
    import sys

    code = (
        "import sys; import latentwire_hf.config; from latentwire_core.config import INTERLINGUAS;"
        "print(INTERLINGUAS.names(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['lm_pool', 'mean_pool', 'perceiver'] False", out.stderr


def test_lm_encoder_config_gives_the_encoder_its_arguments_as_wire_json_stores_them(tmp_path: Path) -> None:
    """``LMPoolConfig.encoder_kwargs`` is what wire.json's ``lm_encoder`` holds and what
    ``LMPoolEncoder`` takes; ``standardize`` appears only when on, so earlier wires keep their
    identity (and fingerprint)."""
    from latentwire_hf.config import LMPoolConfig

    plain = LMPoolConfig(n_layers=1).encoder_kwargs(1)
    assert plain == {"start_layer": 1, "n_layers": 1, "causal": False, "train": "full", "lora_rank": 8}
    kw = LMPoolConfig(n_layers=1, causal=True, standardize=True).encoder_kwargs(1)
    assert kw == {**plain, "causal": True, "standardize": True}
    model, _ = KNOWN_MODELS["tiny-llama"]()
    cfg = InterlinguaConfig(kind="lm_pool", d_in=model.config.hidden_size, d_z=16, n_tokens=4, ratio=2.0)
    enc = LMPoolEncoder(cfg, lm=model, **kw)
    assert enc.causal and enc.standardize and len(enc._layer_list()) == 1
    with pytest.raises(ValueError, match="train must be one of"):
        LMPoolConfig(train="half")
