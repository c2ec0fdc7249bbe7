"""The evaluation-method registry: validation reads it, the runner loops over it, a new method is one class."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest
import torch
from eval_rows import qa_examples

from latentwire_core.message import HEADER_BYTES
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.methods import (
    METHODS,
    EvalContext,
    TokenMethod,
    check_methods,
    derangement,
    register_method,
)

SHIPPED = {
    "text",
    "text_kshot",
    "text_soft_prompt",
    "no_context",
    "latent",
    "latent_shuffled",
    "latent_zero",
    "token_budget",
    "mean_pool",
    "pca",
    "llmlingua",
    "lm_coded_text",
    "truncation_bytes",
    "llmlingua_bytes",
    "linear_probe",
    "joint",
    "oracle",
}


def test_every_shipped_method_is_registered_with_its_scope() -> None:
    assert set(METHODS.names()) == SHIPPED
    scopes = {m: METHODS.get(m).scope for m in SHIPPED}
    assert {m for m, s in scopes.items() if s == "reference"} == {"linear_probe"}
    assert {m for m, s in scopes.items() if s == "combined"} == {"joint", "oracle"}
    assert METHODS.get("latent").uses == {"wire"} and METHODS.get("text_soft_prompt").uses == {"control"}


def test_the_registry_loads_without_torch() -> None:
    code = "import sys, latentwire_eval.methods as m; m.METHODS.get('latent'); print([x for x in ('torch', 'pandas') if x in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("methods", "kind", "readers", "needle"),
    [
        (["text", "telepathy"], "qa", 2, "unknown method 'telepathy'"),
        (["linear_probe"], "qa", 2, "linear_probe needs a classification task"),
        (["latent_shuffled"], "qa", 2, "latent_shuffled needs latent evaluated beside it"),
        (["latent", "joint"], "qa", 1, "joint needs at least 2 models"),
        (["oracle"], "classification", 2, "oracle needs latent evaluated beside it"),
    ],
)
def test_check_methods_names_each_problem(methods: list[str], kind: str, readers: int, needle: str) -> None:
    problems = check_methods(methods, task_kind=kind, n_readers=readers)
    assert any(needle in p for p in problems), problems


def test_check_methods_accepts_a_valid_list() -> None:
    assert check_methods(sorted(SHIPPED - {"linear_probe"}), task_kind="qa", n_readers=2) == []
    assert check_methods(["text", "latent", "linear_probe"], task_kind="classification", n_readers=1) == []


def test_derangement_gives_every_example_another_one() -> None:
    exs = qa_examples(7)
    partner = derangement(exs, seed=3)
    assert set(partner) == {e.id for e in exs}
    assert all(partner[e.id].id != e.id for e in exs)
    assert sorted(p.id for p in partner.values()) == sorted(e.id for e in exs)  # a permutation
    assert partner == derangement(exs, seed=3)


def test_token_methods_fill_the_slot_within_the_budget_and_send_nothing() -> None:
    lm = FakeFrozenLM(vocab=300, d_model=16)
    exs = qa_examples(4)
    ctx = EvalContext(
        task=get_task("squad"),
        train=exs,
        budgets={e.id: 3 for e in exs},
        compress="context",
        max_text_tokens=8,
    )
    text = METHODS.get("text")(ctx, "fake", lm)
    budget = METHODS.get("token_budget")(ctx, "fake", lm)
    none = METHODS.get("no_context")(ctx, "fake", lm)
    for m in (text, budget, none):
        m.fit()
    slots, sent = budget.slots(exs)
    assert sent == [0] * 4 and all(len(s) <= 3 for s in slots)
    full, _ = text.slots(exs)
    assert all(
        list(s) == list(f)[:3] for s, f in zip(slots, full, strict=True)
    )  # the text's first M_i tokens
    assert none.slots(exs) == ([[], [], [], []], [0] * 4) and none.read(exs[0]) == ""
    assert text.read(exs[0]) == lm.decode(full[0])


def test_no_context_keeps_the_question_unless_it_is_the_whole_source() -> None:
    lm = FakeFrozenLM(vocab=300, d_model=16)
    problem = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    gsm = Example(id="g", task="gsm8k", source=problem, question=problem, answers=("7",))
    hop = Example(
        id="h",
        task="hotpotqa",
        source="Paris is in France. Where is Paris?",
        question="Where is Paris?",
        context="Paris is in France.",
        answers=("France",),
    )
    for task, ex, expected in (
        ("gsm8k", gsm, []),
        ("hotpotqa", hop, lm.tokenize(["Question: Where is Paris?"])[0]),
    ):
        ctx = EvalContext(task=get_task(task), train=[ex], budgets={ex.id: 3}, compress="source")
        none = METHODS.get("no_context")(ctx, "fake", lm)
        none.fit()
        assert none.slots([ex]) == ([list(expected)], [0])  # GSM8K: the problem is what is compressed


def test_mean_pool_sends_framed_codec_bytes() -> None:
    from latentwire_core import QuantWireCodec
    from latentwire_core.config import WireCodecConfig

    lm = FakeFrozenLM(vocab=300, d_model=16)
    exs = qa_examples(3)
    codec = QuantWireCodec(WireCodecConfig(precision="int8", group_size=16))
    ctx = EvalContext(
        task=get_task("squad"), train=exs, budgets={e.id: 2 for e in exs}, compress="context", codec=codec
    )
    slots, sent = METHODS.get("mean_pool")(ctx, "fake", lm).slots(exs)
    assert [tuple(s.shape) for s in slots] == [(2, 16)] * 3  # type: ignore[union-attr]
    assert sent == [HEADER_BYTES + 2 * 16 + 2 * 2] * 3  # int8 values + one fp16 scale per 16


@pytest.fixture
def first_word() -> Iterator[str]:
    """A method added the documented way: one class, registered under its TOML name."""

    @register_method("first_word")
    class FirstWord(TokenMethod):
        """The compressed text's first word (a deliberately weak baseline)."""

        def ids(self, e: Example) -> list[int]:
            return list(self.lm.tokenize([" " + self.ctx.text(e).split()[0]])[0])[: self.ctx.budgets[e.id]]

    yield "first_word"
    METHODS._items.pop("first_word")


def test_a_registered_method_is_validated_and_run_by_the_runner(
    tmp_path: Path, data_dir: Path, first_word: str
) -> None:
    from runner.__main__ import main

    exp = tmp_path / "x.toml"
    exp.write_text(
        'name = "x"\n[data]\ntask = "sst2"\ntrain_limit = 16\neval_limit = 6\n'
        '[models]\nnames = ["tiny-llama"]\n[features]\nmax_length = 32\n[wire.encoder]\nn_tokens = 2\nd_z = 16\n'
        "[train]\nsteps = 2\nbatch_size = 4\n"
        f'[eval]\nmethods = ["text", "{first_word}"]\nbatch_size = 8\nbootstrap_resamples = 100\n'
    )
    assert main([str(exp), "--runs-dir", str(tmp_path / "runs")]) == 0
    preds = pd.read_parquet(tmp_path / "runs" / "x" / "eval" / "predictions.parquet")
    mine = preds[preds["method"] == first_word]
    assert len(mine) == 6 and (mine["slot_tokens"] <= 2).all() and (mine["wire_bytes"] == 0).all()
    metrics = json.loads((tmp_path / "runs" / "x" / "eval" / "metrics.json").read_text())
    assert first_word in {r["method"] for r in metrics["results"]}


def test_latent_and_its_shuffled_control_read_through_the_same_path() -> None:
    """The shuffled control is the latent method with another example's text: same M_i, same bytes."""
    from latentwire_core import LatentWire, QuantWireCodec
    from latentwire_core.config import InterlinguaConfig, LatentWireConfig, WireCodecConfig
    from latentwire_core.message import encoder_fingerprint

    torch.manual_seed(0)
    lm = FakeFrozenLM(vocab=300, d_model=16)
    exs = qa_examples(4)

    class Features:
        feature_dim = 8

        def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
            g = [torch.Generator().manual_seed(sum(map(ord, t))) for t in texts]
            return torch.stack([torch.randn(5, 8, generator=x) for x in g]), torch.ones(
                len(texts), 5, dtype=torch.bool
            )

        def read_text(self, text: str) -> str:
            return text

    cfg = LatentWireConfig(interlingua=InterlinguaConfig(kind="mean_pool", d_in=8, d_z=16, n_tokens=2))
    wire = LatentWire(cfg, {"fake": (16, 1.0)}).eval()
    fp = encoder_fingerprint(wire.encoder, {"test": 1})
    ctx = EvalContext(
        task=get_task("squad"),
        train=exs,
        budgets={e.id: 2 for e in exs},
        compress="context",
        codec=QuantWireCodec(WireCodecConfig()),
        features=Features(),
        wire=wire,
        fingerprint=fp,
        partner=derangement(exs, 1),
    )
    own, own_bytes = METHODS.get("latent")(ctx, "fake", lm).slots(exs)
    shuffled_m = METHODS.get("latent_shuffled")(ctx, "fake", lm)
    shuffled, sh_bytes = shuffled_m.slots(exs)
    assert own_bytes == sh_bytes and all(b > HEADER_BYTES for b in own_bytes)
    by_id = {e.id: o for e, o in zip(exs, own, strict=True)}
    for e, s in zip(exs, shuffled, strict=True):
        assert torch.equal(s, by_id[ctx.partner[e.id].id])  # the partner's own latent, exactly
        assert shuffled_m.read(e) == ctx.partner[e.id].context
    # the zero control: the same message size, and every row is the adapter's image of Z = 0
    zero, zero_bytes = METHODS.get("latent_zero")(ctx, "fake", lm).slots(exs)
    assert zero_bytes == own_bytes
    with torch.no_grad():
        expected = wire.to_model(torch.zeros(1, 2, 16), "fake")[0]
    for z in zero:
        torch.testing.assert_close(z, expected)
