"""The general corpus never admits an evaluation text, counts what it keeps, and keeps a validation part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentwire_core.tasks import TASKS
from latentwire_hf.data.corpus import (
    CORPUS_PARTS,
    NGRAM,
    build_corpus,
    evaluation_texts,
    ngram_keys,
    read_corpus,
    write_corpus,
)


@pytest.fixture(scope="module")
def evaluated(data_dir: Path) -> dict[str, list[str]]:
    """Every registered task's evaluation texts that load from the data folder (full or the slices)."""
    return evaluation_texts(data_dir)


@pytest.fixture(scope="module")
def keys(evaluated: dict[str, list[str]]) -> set[str]:
    return {k for texts in evaluated.values() for t in texts for k in ngram_keys(t)}


def test_ngram_keys_ignore_case_and_punctuation_and_short_texts_match_whole() -> None:
    words = [f"w{i}" for i in range(NGRAM + 2)]
    assert len(ngram_keys(" ".join(words))) == 3
    assert ngram_keys("Hello, World!") == {"=hello world"} == ngram_keys("hello   world")
    assert ngram_keys("") == set()


def test_the_corpus_shares_no_ngram_with_any_evaluation_text(
    data_dir: Path, keys: set[str], evaluated
) -> None:
    """Over the whole task registry: no kept text shares a 13-gram with (or equals) an evaluation text."""
    assert {"squad", "sst2", "reconstruct_32"} <= set(evaluated)  # the registry's tasks were read
    corpus = build_corpus(data_dir, keys=keys)
    assert corpus.texts
    for t in corpus.texts:
        assert not ngram_keys(t.text) & keys, t.text[:80]
        assert "=" + " ".join(t.text.lower().split()) not in keys


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.tuples(st.sampled_from(sorted(TASKS)), st.integers(min_value=0, max_value=10_000)))
def test_a_planted_evaluation_text_is_never_admitted(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, keys: set[str], evaluated, pick
) -> None:
    """Property over the task registry: any evaluation text of any task, planted into a training file
    (SST-2's), is dropped, and the drop is counted."""
    task, i = pick
    if not evaluated.get(task):
        return  # this task's evaluation files are not in the data folder
    text = evaluated[task][i % len(evaluated[task])]
    root = tmp_path_factory.mktemp("data")
    (root / "sst2").mkdir()
    head = (data_dir / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:40]  # real rows
    planted = " ".join(text.split())  # one TSV cell: no tabs or newlines
    (root / "sst2" / "train.tsv").write_text("\n".join([*head, f"{planted}\t1", ""]), encoding="utf-8")
    corpus = build_corpus(root, parts=["sst2_train"], keys=keys)
    assert planted not in {t.text for t in corpus.texts}
    assert corpus.dropped.get("sst2_train", 0) >= 1
    assert set(corpus.missing) == set()


def test_written_corpus_has_counts_per_part_and_reader(
    tmp_path: Path, data_dir: Path, keys: set[str]
) -> None:
    corpus = build_corpus(data_dir, keys=keys)
    counts = write_corpus(corpus, tmp_path, {"words": lambda texts: [t.split() for t in texts]})
    assert json.loads((tmp_path / "counts.json").read_text()) == counts
    train = read_corpus(tmp_path / "corpus.jsonl")
    assert (
        counts["train"]["texts"] == len(train)
        and counts["train"]["tokens"]["words"] == counts["train"]["words"]
    )
    assert sum(p["texts"]["train"] for p in counts["parts"].values()) == len(train)
    assert set(counts["parts"]) | set(counts["missing_parts"]) == set(CORPUS_PARTS)
    # the validation part is a fixed hash of the text: disjoint from training, the same on every build
    val = read_corpus(tmp_path / "corpus.jsonl", "validation")
    assert not set(val) & set(train)
    assert build_corpus(data_dir, keys=keys).split("validation") == val


def test_bad_part_names_and_an_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown corpus parts"):
        build_corpus(tmp_path, parts=["wikipedia"], keys=set())
    with pytest.raises(ValueError, match="no corpus text could be read"):
        build_corpus(tmp_path, keys=set())
