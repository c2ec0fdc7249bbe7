"""The evaluation pipeline (latentwire_eval.pipeline): every method on every reader, then metrics; an
interrupted evaluation resumes from the (reader, method) files it kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from eval_rows import qa_examples

import latentwire_eval.pipeline as pipeline
from latentwire_core import QuantWireCodec
from latentwire_core.config import WireCodecConfig
from latentwire_core.message import message_bytes
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.methods import EvalContext

READERS = {n: FakeFrozenLM(n, vocab=300, d_model=16, seed=i) for i, n in enumerate(["a", "b/c"])}
METHODS = ["text", "no_context", "token_budget"]


def _ctx(exs: list[Example]) -> EvalContext:
    return EvalContext(
        task=get_task("squad"),
        train=exs,
        budgets={e.id: 2 + i % 2 for i, e in enumerate(exs)},
        compress="context",
        codec=QuantWireCodec(WireCodecConfig(precision="int8")),
        options={"d_z": 8},
    )


def test_every_method_on_every_reader_then_metrics_and_message_sizes(tmp_path: Path) -> None:
    exs = qa_examples(5)
    preds, metrics = pipeline.evaluate(_ctx(exs), exs, READERS, METHODS, batch_size=2, n_resamples=100)
    assert len(preds) == len(READERS) * len(METHODS) * len(exs)
    assert set(zip(preds["model"], preds["method"], strict=True)) == {
        (r, m) for r in READERS for m in METHODS
    }
    assert metrics["headline"] == "f1" and {r["method"] for r in metrics["results"]} == set(METHODS)
    # each row records its example's M_i and the latent's message at every precision
    assert preds["n_tokens"].tolist() == [2 + int(i[1:]) % 2 for i in preds["example_id"]]
    int4 = QuantWireCodec(WireCodecConfig(precision="int4"))
    assert (
        preds["latent_wire_bytes_int4"]
        == preds["n_tokens"].map(lambda m: message_bytes(int4, n_tokens=m, d_z=8))
    ).all()


def test_an_interrupted_evaluation_resumes_from_its_kept_files(tmp_path: Path, monkeypatch) -> None:
    exs, part = qa_examples(5), tmp_path / "partial"
    first, _ = pipeline.evaluate(
        _ctx(exs), exs, READERS, METHODS, batch_size=2, n_resamples=100, partial_dir=part
    )
    kept = sorted(p.name for p in part.iterdir())
    assert len(kept) == 6 and all("/" not in k for k in kept)  # a folder-like reader name stays one file name
    torn = part / kept[0]
    torn.write_bytes(b"not parquet")  # killed while writing: redone, the others are read back
    calls: list[str] = []
    real = pipeline.evaluate_method
    monkeypatch.setattr(
        pipeline, "evaluate_method", lambda *a, **k: calls.append(k["method"]) or real(*a, **k)
    )
    again, _ = pipeline.evaluate(
        _ctx(exs), exs, READERS, METHODS, batch_size=2, n_resamples=100, partial_dir=part
    )
    assert len(calls) == 1
    cols = [c for c in first.columns if c != "latency_s"]
    pd.testing.assert_frame_equal(first[cols], again[cols])


def test_squad_v2_metrics_carry_the_abstain_always_reference() -> None:
    exs = [
        Example(
            id="x", task="squad_v2", source="Question: q?\nContext: c", question="q?", context="c", answers=()
        ),
        Example(
            id="y",
            task="squad_v2",
            source="Question: r?\nContext: d",
            question="r?",
            context="d",
            answers=("d",),
        ),
    ]
    ctx = EvalContext(task=get_task("squad_v2"), train=exs, budgets={"x": 2, "y": 2}, compress="context")
    _, metrics = pipeline.evaluate(ctx, exs, {"a": READERS["a"]}, ["no_context"], n_resamples=50)
    assert metrics["always_abstain"]["n"] == 2 and metrics["always_abstain"][
        "no_answer_share"
    ] == pytest.approx(0.5)
