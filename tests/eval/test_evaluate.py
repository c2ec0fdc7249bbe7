"""One method for one reader through the shared prompt: sequence scores and the rows it writes."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from eval_rows import sst_examples

from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.evaluate import evaluate_method, sequence_scores

LM = FakeFrozenLM(d_model=16, n_layers=1, vocab=60, seed=2)
SST2 = get_task("sst2")
SQUAD = get_task("squad")


def test_sequence_scores_match_hand_computed_nll_with_eos() -> None:
    prompt = SlotPrompt(LM, SST2)
    slot = LM.tokenize(["nice"])[0]
    target = [*LM.tokenize([" positive"])[0], LM.EOS]
    got = sequence_scores(prompt, [slot], [target])[0]
    ids = [*prompt.before, *slot, *prompt.after, *target]
    logits = LM.logits(
        LM.hidden_states(LM.embed(torch.tensor([ids])), torch.ones(1, len(ids), dtype=torch.long))
    )[0]
    start = len(ids) - len(target)
    nll = -sum(float(torch.log_softmax(logits[start + j - 1], -1)[t]) for j, t in enumerate(target)) / len(
        target
    )
    assert got["nll"] == pytest.approx(nll, rel=1e-4)
    first = torch.log_softmax(logits[start - 1], -1)
    assert got["first_rank"] == int((first > first[target[0]]).sum())


@pytest.mark.parametrize("task", [SST2, SQUAD])
def test_evaluate_method_rows(task) -> None:
    exs = (
        sst_examples(5)
        if task is SST2
        else [
            Example(
                id=f"q{i}",
                task="squad",
                source=f"Question: q{i}?\nContext: c",
                question=f"q{i}?",
                context="c",
                answers=("c",),
            )
            for i in range(3)
        ]
    )
    prompt = SlotPrompt(LM, task)
    res = evaluate_method(
        prompt,
        exs,
        lambda b: ([LM.tokenize([e.source])[0] for e in b], [0] * len(b)),
        method="text",
        batch_size=2,
    )
    df = pd.DataFrame(res)
    assert len(df) == len(exs) and set(df["method"]) == {"text"}
    assert {"nll_per_token", "first_token_acc1", "first_token_acc5", "confidence", "latency_s"} <= set(
        df.columns
    )
    assert (df["nll_per_token"] > 0).all() and (df["first_token_acc5"] >= df["first_token_acc1"]).all()
    assert (df["prompt_tokens"] == len(prompt.before) + df["slot_tokens"] + len(prompt.after)).all()
    # what the wire replaces, as UTF-8 and compressed well (zstd 19, gzip 9): real streams that decompress to it
    import gzip

    import zstandard

    for e, (_, r) in zip(exs, df.iterrows(), strict=True):
        text = prompt.slot_text(e).strip().encode()
        z = zstandard.ZstdCompressor(level=19).compress(text)
        assert zstandard.ZstdDecompressor().decompress(z) == text
        assert (r["compressed_utf8_bytes"], r["compressed_zstd_bytes"]) == (len(text), len(z))
        assert gzip.decompress(gzip.compress(text, 9, mtime=0)) == text
        assert r["compressed_gzip_bytes"] == len(gzip.compress(text, 9, mtime=0))
    if task is SST2:
        assert set(df["output"]) <= {"negative", "positive"}
    else:
        assert {"em", "f1"} <= set(df.columns)


def test_text_bytes_of_repetitive_and_short_text() -> None:
    from latentwire_eval.bytesize import text_bytes

    long = text_bytes("the wire carries the facts; " * 40)
    assert long.zstd < long.gzip < long.utf8 == 28 * 40  # repetition compresses, zstd best
    short = text_bytes("Paris")
    assert short.utf8 == 5 and short.zstd > 5 and short.gzip > 5  # a stream's frame costs more than 5 bytes
    assert text_bytes("café").utf8 == 5
