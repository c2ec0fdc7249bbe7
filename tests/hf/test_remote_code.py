"""No remote code: a model folder whose config names custom code (``auto_map``) is never executed.

The folder carries a ``modeling_evil.py`` that writes a marker file when imported. Loading it
through our model registry or through the LLMLingua scorer must either refuse (unknown
architecture) or load the built-in class, and in both cases the marker must not appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from latentwire_hf.config import ModelLoadError
from latentwire_hf.models import KNOWN_MODELS, load_causal_lm

REPO = Path(__file__).resolve().parents[2]

EVIL = """
from pathlib import Path
Path({marker!r}).write_text("remote code ran")
from transformers import LlamaConfig, LlamaForCausalLM
class EvilConfig(LlamaConfig):
    model_type = "evil"
class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig
"""


def _evil_folder(tmp: Path, *, model_type: str) -> tuple[Path, Path]:
    model, tok = KNOWN_MODELS["tiny-llama"]()
    folder, marker = tmp / f"evil-{model_type}", tmp / f"marker-{model_type}"
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    (folder / "modeling_evil.py").write_text(EVIL.format(marker=str(marker)))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = model_type
    cfg["auto_map"] = {
        "AutoConfig": "modeling_evil.EvilConfig",
        "AutoModelForCausalLM": "modeling_evil.EvilModel",
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    tcfg = json.loads((folder / "tokenizer_config.json").read_text())
    tcfg["auto_map"] = {"AutoTokenizer": ["modeling_evil.EvilModel", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tcfg))
    return folder, marker


def test_registry_refuses_custom_code_of_an_unknown_architecture(tmp_path: Path) -> None:
    folder, marker = _evil_folder(tmp_path, model_type="evil")
    with pytest.raises(ModelLoadError, match=r"cannot be loaded without running its own code"):
        load_causal_lm(str(folder))
    assert not marker.exists(), "remote code was executed"


def test_the_runner_refuses_a_custom_code_reader_in_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.__main__ import main

    folder, marker = _evil_folder(tmp_path, model_type="evil")
    exp = tmp_path / "e.toml"
    exp.write_text(f'name = "e"\n[models]\nnames = ["{folder}"]\n[features]\nsource = "tiny-llama"\n')
    assert main([str(exp), "--runs-dir", str(tmp_path / "runs"), "--stage", "train"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot be loaded without running its own code" in err
    assert not marker.exists(), "remote code was executed"


def test_registry_loads_the_builtin_class_and_ignores_auto_map(tmp_path: Path) -> None:
    folder, marker = _evil_folder(tmp_path, model_type="llama")
    model, _ = load_causal_lm(str(folder))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not marker.exists(), "remote code was executed"


@pytest.mark.slow
def test_llmlingua_scorer_never_runs_remote_code(tmp_path: Path) -> None:
    """The LLMLingua baseline builds llmlingua's PromptCompressor (which defaults to trusting remote code)."""
    from latentwire_eval.methods.llmlingua import LLMLinguaBaseline

    for model_type in ("evil", "llama"):
        folder, marker = _evil_folder(tmp_path, model_type=model_type)
        try:
            LLMLinguaBaseline(folder, tiktoken_cache=tmp_path / "tiktoken")
        except ValueError as e:  # unknown architecture: refused
            assert model_type == "evil" and ("trust_remote_code" in str(e) or "custom code" in str(e))
        assert not marker.exists(), f"remote code was executed through llmlingua ({model_type})"


def test_static_check_finds_a_load_without_the_flag(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from transformers import AutoModel\n"
        "m = AutoModel.from_pretrained('x')\n"
        "n = AutoModel.from_pretrained('x', trust_remote_code=True)\n"
        "o = AutoModel.from_pretrained('x', trust_remote_code=False)\n"
        "from llmlingua import PromptCompressor\n"
        "p = PromptCompressor(model_name='x')\n"
        "q = PretrainedWire.from_pretrained('runs/x')\n"  # ours: safetensors + JSON only
    )
    script = REPO / "scripts" / "check_remote_code.py"
    out = subprocess.run([sys.executable, str(script), str(bad)], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{bad}:2:" in out.stdout and f"{bad}:3:" in out.stdout and f"{bad}:6:" in out.stdout
    assert f"{bad}:4:" not in out.stdout and f"{bad}:7:" not in out.stdout
    clean = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO)
    assert clean.returncode == 0, clean.stdout
