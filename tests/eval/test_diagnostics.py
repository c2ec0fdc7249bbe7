from __future__ import annotations

import pytest
import torch

from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.diagnostics import embedding_diagnostics
from latentwire_eval.evaluate import evaluate_method


def test_vocabulary_rows_are_their_own_nearest_tokens_at_the_embedding_scale() -> None:
    lm = FakeFrozenLM(vocab=60, embed_scale=3.0)
    ids = [[5, 7, 7], [11]]
    soft = [lm.embed(torch.tensor([r]))[0] for r in ids]
    d = embedding_diagnostics(soft, lm.embed, lm.vocab_size, lm.decode, max_tokens=100)
    assert d["n_soft_tokens"] == 4 and d["n_sampled"] == 4
    assert d["nearest_cos"]["p10"] == pytest.approx(1.0, abs=1e-5)
    assert {t["id"]: t["count"] for t in d["nearest_tokens"]} == {7: 2, 5: 1, 11: 1}
    assert d["embed_rms"] == pytest.approx(lm.embed_rms, rel=1e-4)
    assert d["random_cos"]["mean"] < 0.9  # chance level sits well below an exact hit


def test_scale_is_reported_against_the_embedding_rms() -> None:
    lm = FakeFrozenLM(vocab=40)
    e = lm.embed(torch.arange(40)[None])[0]
    soft = [e[:10] * 100.0]  # the reported regime of decodable compressed tokens
    d = embedding_diagnostics(soft, lm.embed, lm.vocab_size, lm.decode)
    median = float(torch.quantile(e[:10].pow(2).mean(-1).sqrt(), 0.5))
    assert d["rms_ratio"] == pytest.approx(100.0 * median / lm.embed_rms, rel=1e-3)
    assert d["nearest_cos"]["mean"] == pytest.approx(1.0, abs=1e-5)  # direction unchanged by scale
    with pytest.raises(ValueError, match="no soft tokens"):
        embedding_diagnostics([torch.zeros(0, lm.d_model)], lm.embed, lm.vocab_size, lm.decode)


def test_evaluation_batches_by_length_but_returns_rows_in_example_order() -> None:
    lm = FakeFrozenLM()
    task = get_task("squad")
    lens = [30, 3, 17, 1, 25, 9, 12]
    exs = [
        Example(id=f"e{i}", task="squad", source="x" * n, question="q?", context="x" * n, answers=("x",))
        for i, n in enumerate(lens)
    ]
    p = SlotPrompt(lm, task, compress="context")
    seen: list[list[str]] = []

    def slot_fn(chunk):  # records the batches it is asked for
        seen.append([e.id for e in chunk])
        return [p.text_ids(e) for e in chunk], [0] * len(chunk)

    res = evaluate_method(
        p, exs, slot_fn, method="text", batch_size=3, gold_scores=False, own_confidence=False
    )
    assert [r["example_id"] for r in res] == [e.id for e in exs]
    assert seen == [["e3", "e1", "e5"], ["e6", "e2", "e4"], ["e0"]]  # shortest first
    assert [r["slot_tokens"] for r in res] == [len(p.text_ids(e)) for e in exs]
