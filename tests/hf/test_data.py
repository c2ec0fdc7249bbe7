from __future__ import annotations

from pathlib import Path

import pytest

from latentwire_hf.data import DataError, LoadReport, load_examples, load_train_eval

TASKS = ["sst2", "agnews", "trec", "squad", "squad_v2", "hotpotqa", "gsm8k", "xsum"]


@pytest.mark.parametrize("task", TASKS)
def test_every_task_loads_from_the_real_files_without_overlap(task: str, full_data_dir: Path) -> None:
    train, evaluation, report = load_train_eval(task, data_dir=full_data_dir, train_limit=300, eval_limit=200)
    assert train and evaluation and not report.skipped
    assert not {e.id for e in train} & {e.id for e in evaluation}
    assert not {e.source for e in train} & {e.source for e in evaluation}
    for e in evaluation[:20]:
        assert e.task == task and e.source
        assert e.label is not None or e.answers or e.task == "squad_v2"  # v2: unanswerable has none
    if task == "squad_v2":
        assert any(not e.answers for e in evaluation) and any(e.answers for e in evaluation)
    if task == "squad":  # seeded sampling reaches across articles (a prefix of 200 covers 2 of 48)
        assert len({e.group for e in evaluation}) > 20


def test_every_task_with_offline_files_has_one_source_record() -> None:
    """Files, parser, split policy and hub dataset of a task are one record (latentwire_hf.data.sources);
    generated tasks and tasks declared with their own files need none."""
    from latentwire_core.tasks import TASKS as SPECS
    from latentwire_hf.data.sources import SOURCES

    assert set(SOURCES) == {n for n, s in SPECS.items() if s.bundle is None and s.data is None} == set(TASKS)
    carved = {n for n, src in SOURCES.items() if src.carve is not None}
    assert carved == {"agnews", "hotpotqa"} and all(SOURCES[n].train == SOURCES[n].eval for n in carved)


def test_known_counts(full_data_dir: Path) -> None:
    # counts from ../shared/data/README.md
    assert len(load_examples("sst2", "eval", data_dir=full_data_dir)) == 872
    assert len(load_examples("squad", "eval", data_dir=full_data_dir)) == 10570
    assert len(load_examples("gsm8k", "eval", data_dir=full_data_dir)) == 1319
    ag_tr, ag_ev = (load_examples("agnews", s, data_dir=full_data_dir) for s in ("train", "eval"))
    assert len(ag_tr) + len(ag_ev) == 7600


def test_leaking_official_splits_are_deduplicated(full_data_dir: Path) -> None:
    # TREC's official train and test share 10 questions; they are removed from train and counted
    _, _, report = load_train_eval("trec", data_dir=full_data_dir)
    assert report.dropped_overlap == 10


def _write_sst2(root: Path, dev_lines: list[str]) -> None:
    (root / "sst2").mkdir(parents=True)
    (root / "sst2" / "dev.tsv").write_text("sentence\tlabel\n" + "".join(dev_lines))


def test_malformed_row_is_reported_with_file_and_line(tmp_path: Path) -> None:
    _write_sst2(tmp_path, ["good movie\t1\n", "no label here\n", "bad movie\t0\n", "weird\t7\n"])
    with pytest.raises(DataError, match=r"sst2/dev\.tsv:3: expected"):
        load_examples("sst2", "eval", data_dir=tmp_path)
    report = LoadReport()
    rows = load_examples("sst2", "eval", data_dir=tmp_path, on_error="skip", report=report)
    assert [e.label for e in rows] == [1, 0]
    assert len(report.skipped) == 2 and "dev.tsv:3" in report.skipped[0] and "dev.tsv:5" in report.skipped[1]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"gsm8k/test\.jsonl: file not found"):
        load_examples("gsm8k", "eval", data_dir=tmp_path)


def test_unknown_task() -> None:
    with pytest.raises(KeyError, match="unknown task 'mnli'"):
        load_examples("mnli", "eval")


def test_binary_garbage_in_a_tsv_is_a_named_data_error_or_skipped(tmp_path: Path) -> None:
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_bytes(
        b"sentence\tlabel\ngood movie\t1\n\xff\xfe\x00garbage\x81\t1\nbad movie\t0\n"
    )
    with pytest.raises(DataError, match=r"sst2/dev\.tsv:3: not valid utf-8"):
        load_examples("sst2", "eval", data_dir=tmp_path)
    report = LoadReport()
    rows = load_examples("sst2", "eval", data_dir=tmp_path, on_error="skip", report=report)
    assert [e.label for e in rows] == [1, 0] and len(report.skipped) == 1 and "dev.tsv:3" in report.skipped[0]


def _squad_file(root: Path, text: bytes) -> None:
    (root / "squad").mkdir(parents=True, exist_ok=True)
    (root / "squad" / "dev-v1.1.json").write_bytes(text)


def _squad_doc(answers: object) -> dict:
    good = {"id": "ok", "question": "Who?", "answers": [{"text": "Denver", "answer_start": 0}]}
    bad = {"id": "bad", "question": "What?", "answers": answers}
    return {"data": [{"title": "T", "paragraphs": [{"context": "Denver won.", "qas": [bad, good]}]}]}


@pytest.mark.parametrize("answers", [None, "Denver", [{"text": None}], [3]])
def test_malformed_squad_answers_are_named_by_record_path(tmp_path: Path, answers: object) -> None:
    import json

    _squad_file(tmp_path, json.dumps(_squad_doc(answers)).encode())
    with pytest.raises(
        DataError, match=r"dev-v1\.1\.json:data\[0\]\.paragraphs\[0\]\.qas\[0\] \(id bad\): 'answers'"
    ):
        load_examples("squad", "eval", data_dir=tmp_path)
    report = LoadReport()
    rows = load_examples("squad", "eval", data_dir=tmp_path, on_error="skip", report=report)
    assert [e.id for e in rows] == ["ok"] and len(report.skipped) == 1


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'{"data": {}}', r"'data' must be a list"),
        (b'{"version": "1.1"}', r"'data' must be a list"),
        (b'{"data": [\n{"title": "\xff"}]}', r"dev-v1\.1\.json:2: not valid UTF-8"),
        (b'{"data": [\n oops', r"dev-v1\.1\.json:2: not JSON"),
        (b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", r"dev-v1\.1\.json: JSON nested too deeply"),
    ],
)
def test_bad_squad_structure_or_bytes_is_a_named_data_error(
    tmp_path: Path, content: bytes, match: str
) -> None:
    _squad_file(tmp_path, content)
    for on_error in ("raise", "skip"):  # a file that is not SQuAD at all cannot be skipped row by row
        with pytest.raises(DataError, match=match):
            load_examples("squad", "eval", data_dir=tmp_path, on_error=on_error)  # type: ignore[arg-type]


def test_non_object_jsonl_rows_are_named(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_bytes(
        b'{"question": "1+1?", "answer": "#### 2"}\n[1, 2]\n\xff\n'
    )
    report = LoadReport()
    rows = load_examples("gsm8k", "eval", data_dir=tmp_path, on_error="skip", report=report)
    assert len(rows) == 1 and len(report.skipped) == 2
    assert "test.jsonl:2" in report.skipped[0] and "test.jsonl:3" in report.skipped[1]


def test_a_task_declared_by_its_spec_alone_loads_from_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a JSON Lines task is one TaskSpec entry: files and fields live on it, the loader is generic."""
    import json

    from latentwire_core.tasks import TASKS, TaskData, TaskSpec

    spec = TaskSpec(
        name="yesno",
        kind="classification",
        instruction="Is the answer to this question yes or no?\n",
        labels=(" no", " yes"),
        data=TaskData(
            train="yesno/train.jsonl", eval="yesno/dev.jsonl", fields={"source": "q", "label": "a"}
        ),
    )
    monkeypatch.setitem(TASKS, "yesno", spec)
    (tmp_path / "yesno").mkdir()
    rows = [{"q": f"is {i} even?", "a": int(i % 2 == 0)} for i in range(8)]
    (tmp_path / "yesno" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    (tmp_path / "yesno" / "dev.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows[6:]) + '{"q": "no label"}\n'
    )
    train = load_examples("yesno", "train", data_dir=tmp_path)
    assert [(e.source, e.label, e.id) for e in train[:2]] == [
        ("is 0 even?", 1, "yesno-1"),
        ("is 1 even?", 0, "yesno-2"),
    ]
    with pytest.raises(DataError, match=r"yesno/dev\.jsonl:3: KeyError"):
        load_examples("yesno", "eval", data_dir=tmp_path)
    report = LoadReport()
    assert len(load_examples("yesno", "eval", data_dir=tmp_path, on_error="skip", report=report)) == 2
    assert len(report.skipped) == 1
    # the runner's config knows the task from the same registry
    from runner.config import load_experiment

    exp = tmp_path / "x.toml"
    exp.write_text('name = "x"\n[data]\ntask = "yesno"\n')
    assert load_experiment(exp).data.task == "yesno"


@pytest.mark.parametrize("task", ["sst2", "squad"])
def test_validation_split_is_carved_from_train_after_the_training_examples(task: str, data_dir: Path) -> None:
    # the training examples do not change; the validation ones come after them in the training file,
    # share no id, text or article with them, and none is in the official evaluation split (sized for the
    # tiny SQuAD slice too: 6 articles of 8 questions, so 24 training questions leave 3 articles)
    train, dev, _ = load_train_eval(task, data_dir=data_dir, train_limit=24, eval_limit=16)
    train_v, val, _ = load_train_eval(
        task, data_dir=data_dir, train_limit=24, eval_limit=16, eval_split="validation"
    )
    assert [e.id for e in train_v] == [e.id for e in train]
    assert len(val) == 16
    assert not {e.id for e in val} & {e.id for e in train} and not {e.source for e in val} & {
        e.source for e in train
    }
    assert not {e.group for e in val if e.group} & {e.group for e in train if e.group}
    every_train = [e.id for e in load_examples(task, "train", data_dir=data_dir)]
    assert {e.id for e in val} <= set(every_train[24:]) and not {e.id for e in val} & {e.id for e in dev}
    again = load_train_eval(task, data_dir=data_dir, train_limit=24, eval_limit=16, eval_split="validation")[
        1
    ]
    assert [e.id for e in again] == [e.id for e in val]  # the same draw for the same seed


def test_unknown_eval_split_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="eval_split must be 'eval' or 'validation', got 'test'"):
        load_train_eval("sst2", data_dir=data_dir, eval_split="test")  # type: ignore[arg-type]


def test_recall_loads_without_a_data_folder_and_has_a_usable_validation_split(tmp_path: Path) -> None:
    # an empty data folder: recall is generated, nothing is read
    train, evaluation, _ = load_train_eval("recall_k4", data_dir=tmp_path, train_limit=500, eval_limit=100)
    assert len(train) == 500 and len(evaluation) == 100
    assert {e.context for e in train}.isdisjoint(e.context for e in evaluation)
    v_train, val, _ = load_train_eval(
        "recall_k4", data_dir=tmp_path, train_limit=500, eval_limit=100, eval_split="validation"
    )
    assert v_train == train and len(val) == 100
    assert {e.id for e in val}.isdisjoint(e.id for e in train) and all("-train-" in e.id for e in val)


def test_reconstruct_spans_are_real_text_of_the_task_length_and_splits_do_not_share_text(
    data_dir: Path,
) -> None:
    from latentwire_core.tasks import RECONSTRUCT_WORDS

    train, evaluation, _ = load_train_eval("reconstruct_32", data_dir=data_dir, eval_limit=20)
    words = RECONSTRUCT_WORDS[32]
    assert train and evaluation
    for e in train[:50] + evaluation:
        assert len(e.source.split()) == words and e.answers == (e.source,) and not e.question
    squad_dev = " ".join(x.context for x in load_examples("squad", "eval", data_dir=data_dir))
    assert all(e.source in squad_dev for e in evaluation)  # evaluation spans come from dev text only
    assert {e.source for e in train}.isdisjoint(e.source for e in evaluation)


def test_reconstruct_without_data_names_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LATENTWIRE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data beside the working folder either
    with pytest.raises(DataError, match="reconstruct_16: needs the SQuAD"):
        load_examples("reconstruct_16", "eval")


def test_name_key_keeps_registry_names_and_makes_paths_one_safe_distinct_component() -> None:
    from latentwire_core.names import name_key

    assert name_key("smollm2-135m") == "smollm2-135m"
    a, b = name_key("/models/my llama"), name_key("/other/my llama")
    assert a != b and "/" not in a and a.startswith("models_my_llama-")
    assert "/" not in name_key("org/name") and name_key("..") != ".."


def test_the_data_folder_beside_the_checkout_is_found_without_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As the README's scripts do: ``../shared/data`` beside the working folder, when the variable is unset."""
    from latentwire_hf.data import data_dir_from_env

    monkeypatch.delenv("LATENTWIRE_DATA", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    found = data_dir_from_env()
    assert found is not None and found.resolve() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.setenv("LATENTWIRE_DATA", str(tmp_path / "elsewhere"))
    assert data_dir_from_env() == tmp_path / "elsewhere"


def test_an_unreachable_hub_fails_at_once_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time

    monkeypatch.delenv("LATENTWIRE_DATA", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"unreachable: set LATENTWIRE_DATA or \[data\].data_dir"):
        load_examples("sst2", "eval")
    assert time.perf_counter() - t0 < 5
