from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import torch

from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.evaluate import evaluate_method
from latentwire_eval.gencache import GenerationCache


def _examples() -> list[Example]:
    return [
        Example(id=f"e{i}", task="squad", source=c, question="q?", context=c, answers=("ab",))
        for i, c in enumerate(["ab cd", "efg", "hi jk lm", "n"])
    ]


def _fresh_cached_again(p, exs, cache, monkeypatch, member: str, **kw):
    """Evaluate ``text`` without the cache, with it (filling it), then again with ``lm.<member>``
    counting calls: returns the three results and the calls of the last."""

    def text(chunk):
        return [p.text_ids(e) for e in chunk], [0] * len(chunk)

    fresh = evaluate_method(p, exs, text, method="text", **kw)
    first = evaluate_method(p, exs, text, method="text", cache=cache, **kw)
    calls: list[int] = []
    real = getattr(p.lm, member)
    monkeypatch.setattr(p.lm, member, lambda *a, **k: calls.append(1) or real(*a, **k))
    again = evaluate_method(p, exs, text, method="text", cache=cache, **kw)
    return fresh, first, again, calls


def test_cached_answers_equal_fresh_ones_and_skip_the_reader(tmp_path: Path, monkeypatch) -> None:
    lm = FakeFrozenLM()
    p = SlotPrompt(lm, get_task("squad"), compress="context")
    exs = _examples()

    cache = GenerationCache(tmp_path / "g.sqlite", "fake:1")
    kw = {"batch_size": 3, "gold_scores": False, "own_confidence": False}
    fresh, first, again, calls = _fresh_cached_again(p, exs, cache, monkeypatch, "generate", **kw)
    assert calls == []  # every answer came from the cache
    for a, b, c in zip(fresh, first, again, strict=True):
        assert a["raw_output"] == b["raw_output"] == c["raw_output"] and a["f1"] == c["f1"]
        assert c["latency_s"] > 0
    # another reader (fingerprint) or another generation length is another key
    other = GenerationCache(tmp_path / "g.sqlite", "fake:2")
    assert other.get([other.key([1, 2], max_new_tokens=16, stop_at_line=True)]) == {}
    assert cache.key([1, 2], max_new_tokens=16, stop_at_line=True) != cache.key(
        [1, 2], max_new_tokens=8, stop_at_line=True
    )


def test_soft_token_prompts_are_never_cached(tmp_path: Path) -> None:
    lm = FakeFrozenLM()
    p = SlotPrompt(lm, get_task("squad"), compress="context")
    cache = GenerationCache(tmp_path / "g.sqlite", "fake:1")

    def soft(chunk):
        return [torch.randn(2, lm.d_model) for _ in chunk], [8] * len(chunk)

    evaluate_method(
        p, _examples(), soft, method="latent", gold_scores=False, own_confidence=False, cache=cache
    )
    import sqlite3

    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone() == (0,)


def test_a_damaged_cache_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    path.write_bytes(b"not a database" * 100)
    cache = GenerationCache(path, "fake:1")
    k = cache.key([3], max_new_tokens=4, stop_at_line=True)
    cache.put([(k, "x", 0.1)])
    assert cache.get([k]) == {k: ("x", pytest.approx(0.1))}
    assert path.with_suffix(".corrupt").is_file()


def test_label_scores_of_text_prompts_are_cached_equal_and_skip_the_reader(
    tmp_path: Path, monkeypatch
) -> None:
    lm = FakeFrozenLM()
    p = SlotPrompt(lm, get_task("sst2"))
    exs = [
        Example(id=f"s{i}", task="sst2", source=s, label=i % 2)
        for i, s in enumerate(["a fine film", "dull", "it is a mess of a movie", "warm"])
    ]

    cache = GenerationCache(tmp_path / "g.sqlite", "fake:1")
    fresh, first, again, calls = _fresh_cached_again(
        p, exs, cache, monkeypatch, "hidden_states", batch_size=4
    )
    assert calls == []  # every score came from the cache
    for a, b, c in zip(fresh, first, again, strict=True):
        for k in ("output", "accuracy", "label_logprobs", "confidence", "nll_per_token", "first_token_acc1"):
            assert a[k] == b[k] == c[k], k
        assert c["latency_s"] > 0
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone() == (4,)
