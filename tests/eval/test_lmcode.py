"""Text arithmetic-coded under a language model (constriction's range coder): lossless, sized, refused when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentwire_eval.lmcode import LMTextCoder

pytest.importorskip("constriction")


@pytest.fixture(scope="module")
def coder(tmp_path_factory: pytest.TempPathFactory) -> LMTextCoder:
    from latentwire_hf.tiny_models import tiny_model

    model, tok = tiny_model("llama")
    folder = tmp_path_factory.mktemp("coder")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return LMTextCoder(folder, max_tokens=256)


@pytest.mark.parametrize(
    "text", ["The Normans gave their name to Normandy.", "café — 3 × 4 = 12", "a", "x" * 200]
)
def test_the_receiver_decodes_the_text_back_token_by_token(coder: LMTextCoder, text: str) -> None:
    msg = coder.encode(text)
    assert len(msg) % 4 == 0 and coder.coded_bytes(text) == len(msg)
    assert coder.decode(msg) == text and coder.verify(text)


def test_a_likelier_text_costs_fewer_bytes_and_bad_messages_are_refused(coder: LMTextCoder) -> None:
    import numpy as np

    # a random tiny LM is close to uniform over its ~260 byte tokens: ~8 bits a byte, so 200 bytes cost
    # about 200 coded bytes; the coder adds at most a few words
    size = coder.coded_bytes("x" * 200)
    assert 150 <= size <= 260
    with pytest.raises(ValueError, match="whole 32-bit words"):
        coder.decode(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="over the coder's 256"):
        coder.encode("y" * 300)
    # another coder's (or random) words do not pass silently: no end symbol, or another text
    rng = np.random.default_rng(0)
    junk = rng.integers(0, 2**32, size=8, dtype=np.uint64).astype("<u4").tobytes()
    try:
        assert coder.decode(junk) != "The Normans gave their name to Normandy."
    except ValueError as e:
        assert "end symbol" in str(e)


def test_the_method_answers_as_text_and_sends_the_coded_bytes(
    coder: LMTextCoder, tmp_path: Path, data_dir: Path
) -> None:
    """End to end through the runner: lm_coded_text beside text on the tiny experiment."""
    import pandas as pd

    from experiments import experiment
    from runner.__main__ import main

    p = experiment(
        tmp_path,
        "tiny",
        name="coded",
        eval={
            "methods": ["text", "latent", "lm_coded_text", "truncation_bytes"],
            "lm_coder": str(coder.folder),
            "lm_coder_verify": 3,
        },
    )
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 0
    preds = pd.read_parquet(tmp_path / "runs" / "coded" / "eval" / "predictions.parquet")
    text = preds[preds.method == "text"].set_index(["model", "example_id"])
    coded = preds[preds.method == "lm_coded_text"].set_index(["model", "example_id"])
    assert (coded["output"] == text.loc[coded.index, "output"]).all()  # lossless: the same answers
    want = {s: coder.coded_bytes(s) for s in coded["source"]}
    assert (coded["wire_bytes"] == coded["source"].map(want)).all()
    assert (coded["wire_bytes"] > 0).all() and (text["wire_bytes"] == 0).all()
    # truncation at the latent message's bytes: a prefix of the text, never more bytes than the message
    cut = preds[preds.method == "truncation_bytes"].set_index(["model", "example_id"])
    latent = preds[preds.method == "latent"].set_index(["model", "example_id"])
    assert (cut["wire_bytes"] <= latent.loc[cut.index, "wire_bytes"]).all()
    assert (cut["wire_bytes"] > 0).all() and (cut["encoded_utf8_bytes"] == cut["wire_bytes"]).all()
