from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import attrs
import pytest

from latentwire_core.config import InterlinguaConfig
from latentwire_hf.config import LMPoolConfig
from runner.config import ConfigError, Experiment, load_experiment, to_toml

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "experiments").glob("*.toml"))


def test_quickstart_is_shipped_first() -> None:
    assert (REPO / "experiments" / "quickstart.toml") in SHIPPED and len(SHIPPED) >= 3


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_experiment_validates(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a config that adds a reader to a trained run (init_from) needs that run's wire.json, which the
    # earlier step of its study writes; here an empty stand-in lets the rest of the file be checked
    monkeypatch.chdir(tmp_path)
    source = tomllib.loads(path.read_text()).get("wire", {}).get("init_from")
    if source:
        (tmp_path / source).mkdir(parents=True)
        (tmp_path / source / "wire.json").write_text("{}")
    exp = load_experiment(path)
    assert isinstance(exp, Experiment)
    # the resolved config (what a run folder keeps) round-trips through TOML
    again = tmp_path / path.name
    again.write_text(to_toml(exp))
    assert load_experiment(again) == exp


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            'name = "x"\n[train]\nlearning_rate = 1e-3\n',
            r"exp\.toml: unknown key 'train\.learning_rate'; allowed here:",
        ),
        ('name = "x"\nbogus = 1\n', r"unknown key 'bogus'"),
        ('name = "x"\n[sweep]\na = 1\n', r"unknown key 'sweep'"),
        (
            'name = "x"\n[train]\nsteps = "many"\n',
            r"exp\.toml: 'train\.steps' must be an integer, got 'many'",
        ),
        ('name = "x"\n[train]\nsteps = 1.5\n', r"'train\.steps' must be an integer"),
        ('name = "x"\n[train]\nlr = -1.0\n', r"exp\.toml: \[train\] lr must be > 0, got -1\.0"),
        ('name = "x"\n[wire.encoder]\nn_tokens = 0\n', r"\[wire\.encoder\] n_tokens must be > 0"),
        ('name = "x"\n[wire.encoder]\nn_tokens = 5000\n', r"\[wire\.encoder\] 'n_tokens' must be <= 4096"),
        (
            'name = "x"\n[wire.encoder]\nkind = "qformer"\n',
            r"kind must be one of \['chunk_mean', 'lm_pool', 'perceiver'\]",
        ),
        (
            'name = "x"\n[wire.encoder]\nd_z = 30\n',
            r"\[wire\.encoder\] d_z \(30\) must be divisible by n_heads",
        ),
        ('name = "x"\n[wire.encoder]\nd_in = 384\n', r"'\[wire\.encoder\]\.d_in' is not settable"),
        (
            'name = "x"\n[wire.encoder]\nd_zz = 8\n',
            r"unknown key 'wire\.encoder\.d_zz'; allowed here: d_z, dropout, kind, mlp_ratio, n_heads, n_tokens, ratio$",
        ),
        ('name = "x"\n[wire.lm_pool]\ntrain = "half"\n', r"\[wire\.lm_pool\] train must be one of"),
        ('name = "x"\n[wire]\ninject = "kv"\n', r"inject = 'kv' needs adapter = 'linear', got 'mlp'"),
        ('name = "x"\n[wire]\ninject = "keys"\n', r"\[wire\] inject must be one of"),
        (
            'name = "x"\n[pretrain]\nsteps = 4\ncurriculum = [4, 8]\ncurriculum_steps = 3\n',
            r"exceed steps = 4",
        ),
        (
            'name = "x"\n[data]\ntask = "sst2"\n[wire]\ncompress = "context"\n',
            r"needs a QA task with contexts",
        ),
        ('name = "x"\n[wire]\nd_z = 8\n[wire.encoder]\nd_z = 16\n', r"the same setting twice"),
        ('name = "x"\n[codec]\nprecision = "int3"\n', r"\[codec\] precision must be one of"),
        ('name = "x"\n[data]\ntask = "mnli"\n', r"\[data\] task must be one of"),
        ('name = "x"\n[eval]\nmethods = ["text", "magic"]\n', r"methods must be a non-empty list"),
        ('name = "x"\n[models]\nnames = ["a", "a"]\n', r"names has duplicates"),
        ('name = "x"\n[train]\nseed = 3\n', r"top-level 'seed'"),
        ("[train]\nsteps = 3\n", r"missing required key 'name'"),
        ('name = "x"\n[train\nsteps = 3\n', r"exp\.toml: malformed TOML"),
        ('name = "x"\ntrain = 3\n', r"\[train\] must be a table"),
    ],
)
def test_bad_configs_fail_naming_file_and_key(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_experiment(_write(tmp_path, body))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="experiment file not found"):
        load_experiment(tmp_path / "nope.toml")


def test_overrides(tmp_path: Path) -> None:
    p = _write(tmp_path, 'name = "x"\n')
    exp = load_experiment(p, ["train.steps=7", "wire.encoder.kind=chunk_mean", "models.names=['tiny-llama']"])
    assert (
        exp.train.steps == 7 and exp.wire.encoder.kind == "chunk_mean" and exp.models.names == ("tiny-llama",)
    )
    # the encoder kind's old name (until 2026-12-04), in --set and in a file, is read as its new one
    assert load_experiment(p, ["wire.encoder.kind=mean_pool"]).wire.encoder.kind == "chunk_mean"
    old_name = tmp_path / "old.toml"
    old_name.write_text('name = "x"\n[wire.encoder]\nkind = "mean_pool"\n')
    assert load_experiment(old_name).wire.encoder.kind == "chunk_mean"
    with pytest.raises(ConfigError, match=r"unknown key 'train\.stepz'"):
        load_experiment(p, ["train.stepz=7"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_experiment(p, ["train.steps"])


def test_every_problem_of_a_config_is_reported_at_once(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        '[train]\nlr = -1.0\nsteps = "many"\nbogus = 1\n[wire.encoder]\nd_z = 0\n[eval]\nmethods = ["telepathy"]\n',
    )
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    msg = str(e.value)
    for part in (
        "missing required key 'name'",
        "lr must be > 0",
        "'train.steps' must be an integer",
        "unknown key 'train.bogus'",
        "d_z must be > 0",
        "methods must be a non-empty list",
    ):
        assert part in msg, part
    assert "\n" not in msg  # one line


def test_standardize_needs_the_lm_pool_encoder(tmp_path: Path) -> None:
    p = _write(
        tmp_path, 'name = "x"\n[wire.encoder]\nkind = "perceiver"\n[wire.lm_pool]\nstandardize = true\n'
    )
    with pytest.raises(ConfigError, match=r"lm_pool.standardize needs encoder.kind = 'lm_pool'"):
        load_experiment(p)


def test_anchor_needs_embedding_slots_and_a_fresh_linear_or_mlp_adapter(tmp_path: Path) -> None:
    p = _write(tmp_path, 'name = "x"\n[wire]\nanchor = true\ninject = "kv"\nadapter = "linear"\n')
    with pytest.raises(ConfigError, match=r"anchor = true needs inject = 'embeddings'.*got inject = 'kv'"):
        load_experiment(p)
    assert load_experiment(_write(tmp_path, 'name = "x"\n[wire]\nanchor = true\n')).wire.anchor


def test_the_mlp_adapters_width_and_output_norm_are_settable_and_reach_the_wire(tmp_path: Path) -> None:
    """``[wire] adapter_hidden_mult`` / ``adapter_out_norm`` (core had them, no file could set them) reach
    every reader's adapter; the anchor refuses an output norm (it would undo the fit)."""
    import torch

    from latentwire_core.wire import LatentWire

    exp = load_experiment(
        _write(tmp_path, 'name = "x"\n[wire]\nadapter_hidden_mult = 3\nadapter_out_norm = true\n')
    )
    wire = LatentWire(exp.wire.to_core(384), {"r": (64, 1.0)})
    adapter = wire.adapters.adapters["r"]
    widths = [m.out_features for m in adapter.modules() if isinstance(m, torch.nn.Linear)]
    assert 3 * 64 in widths and 2 * 64 not in widths
    assert any(isinstance(m, torch.nn.LayerNorm) for m in adapter.modules())
    assert Experiment(name="d").wire.to_core(384).adapter_hidden_mult == 2  # the default is core's, unchanged
    with pytest.raises(ConfigError, match=r"anchor = true needs adapter_out_norm = false"):
        load_experiment(_write(tmp_path, 'name = "x"\n[wire]\nanchor = true\nadapter_out_norm = true\n'))


def test_the_flat_wire_layout_of_older_files_reads_as_the_nested_one(tmp_path: Path) -> None:
    """Experiment files and run folders written before [wire.encoder] existed keep loading: each flat
    [wire] key moves to its table (with a FutureWarning naming it), and old ``--set`` keys too."""
    flat = _write(
        tmp_path,
        'name = "x"\n[features]\nsource = "smollm2-135m"\nlayer = 8\n[wire]\nencoder = "lm_pool"\n'
        'encoder_layers = 3\nencoder_train = "lora"\nlora_rank = 4\nencoder_causal = true\n'
        "encoder_standardize = true\nratio = 4\nn_tokens = 64\nd_z = 128\nn_heads = 2\ndropout = 0.1\n"
        'compress = "context"\n[data]\ntask = "squad"\n',
    )
    with pytest.warns(FutureWarning, match=r"\[wire\]\.encoder_layers -> \[wire\.lm_pool\]\.n_layers"):
        old = load_experiment(flat)
    nested = tmp_path / "nested.toml"
    nested.write_text(to_toml(old))
    assert "encoder_layers" not in nested.read_text() and "d_in" not in nested.read_text()
    assert load_experiment(nested) == old
    assert old.wire.encoder == InterlinguaConfig(
        kind="lm_pool", ratio=4.0, n_tokens=64, d_z=128, n_heads=2, dropout=0.1
    )
    assert old.wire.lm_pool == LMPoolConfig(
        n_layers=3, train="lora", lora_rank=4, causal=True, standardize=True
    )
    with pytest.warns(FutureWarning, match=r"--set wire\.d_z -> wire\.encoder\.d_z"):
        assert load_experiment(
            nested, ["wire.d_z=64", "wire.encoder=mean_pool", "wire.encoder_standardize=false"]
        ).wire.encoder == attrs.evolve(old.wire.encoder, d_z=64, kind="chunk_mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # today's layout warns of nothing
        load_experiment(nested, ["wire.encoder.d_z=64"])


def test_the_lm_encoder_table_of_older_files_reads_as_the_lm_pool_encoders_own_table(tmp_path: Path) -> None:
    """``[wire.lm_encoder]`` (before 2026-12-04) is the lm_pool encoder's own ``[wire.lm_pool]`` table now:
    an older file, run folder or ``--set`` key reads the same with a FutureWarning; one setting given in
    both tables with different values is refused, naming both."""
    body = '[features]\nsource = "smollm2-135m"\nlayer = 8\n[wire.encoder]\nkind = "lm_pool"\nratio = 4\n'
    old = _write(tmp_path, f'name = "x"\n{body}[wire.lm_encoder]\nn_layers = 3\ncausal = true\n')
    with pytest.warns(FutureWarning, match=r"\[wire\.lm_encoder\] -> \[wire\.lm_pool\]"):
        got = load_experiment(old)
    assert got.wire.lm_pool == LMPoolConfig(n_layers=3, causal=True)
    new = tmp_path / "new.toml"
    new.write_text(to_toml(got))
    assert "[wire.lm_pool]" in new.read_text() and "lm_encoder" not in new.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_experiment(new) == got
    with pytest.warns(FutureWarning, match=r"--set wire\.lm_encoder\.n_layers -> wire\.lm_pool\.n_layers"):
        assert load_experiment(new, ["wire.lm_encoder.n_layers=2"]).wire.lm_pool.n_layers == 2
    both = _write(
        tmp_path, f'name = "x"\n{body}[wire.lm_encoder]\nn_layers = 3\n[wire.lm_pool]\nn_layers = 2\n'
    )
    with pytest.raises(
        ConfigError, match=r"\[wire\.lm_encoder\]\.n_layers = 3 and \[wire\.lm_pool\]\.n_layers = 2"
    ):
        load_experiment(both)


def test_encoder_kinds_carry_what_the_config_checks_need() -> None:
    """The checks read each kind's traits (fixed M, LM features, its own table, a parameter estimate),
    not its name: a kind registered elsewhere without traits gets variable M and no table."""
    from latentwire_core.config import ENCODER_KINDS, encoder_kind

    assert encoder_kind("perceiver").fixed_m and not encoder_kind("chunk_mean").fixed_m
    assert encoder_kind("mean_pool") == ENCODER_KINDS["chunk_mean"]  # its name until 2026-12-04
    assert ENCODER_KINDS["lm_pool"].needs_lm_features and ENCODER_KINDS["lm_pool"].options is LMPoolConfig
    other = encoder_kind("max_pool")
    assert (other.fixed_m, other.needs_lm_features, other.options) == (False, False, None)
    icfg = InterlinguaConfig(d_in=384, d_z=256, n_tokens=8)
    assert encoder_kind("perceiver").params(icfg, None) > encoder_kind("chunk_mean").params(icfg, None) > 0
    assert ENCODER_KINDS["lm_pool"].params(icfg, LMPoolConfig(n_layers=2)) == 2 * 12 * 384**2 + 384 * 256


def test_pretraining_and_training_share_one_validated_loop_config() -> None:
    """[train] and [pretrain] take the same loop keys from one class; each keeps its own defaults, and a
    bad value in either is refused (``[pretrain] mixed_precision`` was never checked before)."""
    import attrs
    import pytest

    from latentwire_hf.config import LoopConfig, PretrainConfig, TrainConfig

    loop = {f.name for f in attrs.fields(LoopConfig)}
    assert loop <= {f.name for f in attrs.fields(TrainConfig)} and loop <= {
        f.name for f in attrs.fields(PretrainConfig)
    }
    assert (TrainConfig().steps, PretrainConfig().steps) == (200, 0)
    assert (TrainConfig().model_schedule, PretrainConfig().model_schedule) == ("all", "round_robin")
    for cls in (TrainConfig, PretrainConfig):
        with pytest.raises(ValueError, match="mixed_precision"):
            cls(mixed_precision="fp8")
        with pytest.raises(ValueError, match="model_schedule"):
            cls(model_schedule="random")


def test_every_committed_study_run_validates() -> None:
    """The runs scripts/parity_runs.py will make (settings fixed before they run)
    are valid experiment files with their overrides, so a long queue never stops at a typo."""
    import importlib.util
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location("parity_runs", REPO / "scripts" / "parity_runs.py")
        assert spec is not None and spec.loader is not None
        parity = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(parity)
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert {"quickstart-gsm8k", "quickstart-xsum", "quickstart-hotpotqa", "quickstart-bytes"} <= set(
        parity.RUNS
    )
    for name, (toml, sets, _) in parity.RUNS.items():
        exp = load_experiment(REPO / toml, [f"name={name}", *sets])
        assert exp.name == name


def test_a_scorer_folder_with_its_own_code_or_no_config_is_refused_before_any_work(tmp_path: Path) -> None:
    """The LLMLingua scorer loads at evaluation, after training: its folder is checked with the file."""
    import json
    import time

    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "mine", "auto_map": {"AutoModel": "m.M"}}))
    (custom / "m.py").write_text("raise SystemExit('never imported')\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    p = tmp_path / "e.toml"
    for folder, why in ((custom, "names its own code"), (empty, "has no config.json")):
        p.write_text(f'name = "x"\n[eval]\nllmlingua_scorer = "{folder}"\n')
        t0 = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"\[eval\].llmlingua_scorer: .*{why}"):
            load_experiment(p)
        assert time.perf_counter() - t0 < 1.0


def test_curriculum_spans_and_curves_are_checked_with_the_file(tmp_path: Path) -> None:
    p = tmp_path / "e.toml"
    p.write_text('name = "x"\n[pretrain]\nsteps = 4\ncurriculum = [4, 100000000]\ncurriculum_steps = 1\n')
    with pytest.raises(ConfigError, match="curriculum spans must be 2 to 4096 words"):
        load_experiment(p)
    p.write_text('name = "x"\n[pretrain]\nsteps = 4\ncurve_every = 2\n')
    with pytest.raises(ConfigError, match="curve_every needs corpus = 'general'"):
        load_experiment(p)
