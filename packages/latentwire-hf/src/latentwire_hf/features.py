"""Frozen feature sources (MiniLM, a causal LM's hidden states) and an on-disk feature cache.

A frozen encoder runs once per example, not once per epoch: features are cached
per (model, layer, max_length, text hash) as safetensors files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentwire_core.logs import get_logger
from latentwire_hf.models import cache_root, load_causal_lm, load_encoder

__all__ = ["CachedFeatureSource", "EncoderFeatureSource", "LMHiddenFeatureSource", "build_feature_source"]

log = get_logger(__name__)


def _cache_key(name: str, model: PreTrainedModel, rest: str) -> str:
    """The feature cache's folder for a source: ``<name>-<rest>`` for a registry model (its files are
    pinned); a folder or hub id adds its weights' fingerprint, so changed weights never reuse old features
    and the key is one safe path component (:func:`~latentwire_hf.config.name_key`)."""
    from latentwire_core.names import name_key
    from latentwire_hf.config import KNOWN_ENCODERS, KNOWN_MODEL_NAMES
    from latentwire_hf.models import weights_fingerprint

    if name in KNOWN_MODEL_NAMES or name in KNOWN_ENCODERS:
        return f"{name}-{rest}"
    return f"{name_key(name)}-{rest}-{weights_fingerprint(model)[:12]}"


class EncoderFeatureSource:
    """Token features from a frozen bidirectional encoder's last layer (default ``minilm-l6``)."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, name: str, max_length: int = 256
    ) -> None:
        self.model, self.tokenizer, self.name, self.max_length = model.eval(), tokenizer, name, max_length
        self.key = _cache_key(name, model, f"L{model.config.num_hidden_layers}-T{max_length}")

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        dev = next(self.model.parameters()).device
        out = self.model(input_ids=enc["input_ids"].to(dev), attention_mask=enc["attention_mask"].to(dev))
        mask = enc["attention_mask"].bool().to(dev)
        feats = out.last_hidden_state * mask[..., None]  # (B, T, d_f), zero on padding
        return feats, mask

    def read_text(self, text: str) -> str:
        """The prefix of ``text`` these features cover (after truncation to ``max_length`` tokens)."""
        return _read_prefix(self.tokenizer, text, self.max_length, specials=True)


def _read_prefix(tokenizer: PreTrainedTokenizerBase, text: str, max_length: int, *, specials: bool) -> str:
    """The part of ``text`` a source truncated to ``max_length`` tokens actually reads."""
    enc = tokenizer(
        text, truncation=True, max_length=max_length, return_offsets_mapping=True, add_special_tokens=specials
    )
    ends = [int(e) for _, e in enc["offset_mapping"] if e]
    return text[: max(ends)] if ends else ""


class LMHiddenFeatureSource:
    """Hidden states of a frozen causal LM after its first ``layer`` layers (ARC-Encoder style features).

    ``layer = k`` with ``0 < k < n_layers`` runs only the first k layers (the rest are dropped:
    they would be wasted work) and returns their pre-norm output, which equals Hugging Face's
    ``hidden_states[k]``; ``layer = -1`` is the model's final (normed) hidden state.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        name: str,
        layer: int = -1,
        max_length: int = 256,
    ) -> None:
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.layer, self.max_length = layer, max_length
        self.key = _cache_key(name, model, f"L{layer}-T{max_length}")
        body = getattr(model, model.base_model_prefix)
        total = len(body.layers)
        if not (layer == -1 or 0 <= layer < total):
            from latentwire_hf.config import ModelShapeError

            raise ModelShapeError(
                f"[features] layer must be -1 or in [0, {total}) for {name} ({total} layers), got {layer}"
            )
        self._body = body if 0 <= layer < total else None
        if self._body is not None:
            self._body.layers = self._body.layers[:layer]  # later layers would be wasted work

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        self.tokenizer.padding_side = "right"
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            add_special_tokens=False,
        )
        dev = next(self.model.parameters()).device
        mask = enc["attention_mask"].to(dev)
        if self._body is not None:
            from latentwire_hf.encoders.lm_pool import run_decoder_layers

            h = self._body.embed_tokens(enc["input_ids"].to(dev))
            feats = run_decoder_layers(self._body.layers, self._body.rotary_emb, h, mask, causal=True)
            return feats, mask.bool()
        out = self.model(input_ids=enc["input_ids"].to(dev), attention_mask=mask, output_hidden_states=True)
        feats = out.hidden_states[self.layer] * mask[..., None]
        return feats, mask.bool()

    def read_text(self, text: str) -> str:
        """The prefix of ``text`` these features cover (after truncation to ``max_length`` tokens)."""
        return _read_prefix(self.tokenizer, text, self.max_length, specials=False)


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CachedFeatureSource:
    """Wraps a frozen :class:`~latentwire_core.ports.FeatureSource` with a disk + memory cache.

    Args:
        source: a frozen feature source with a ``key`` attribute (model, layer, length).
        cache_dir: root folder; entries go to ``cache_dir/<key>/<sha1[:2]>/<sha1>.safetensors``.
        batch_size: how many uncached texts the source encodes at once.
    """

    MEM_ROWS = 50_000

    def __init__(
        self, source: EncoderFeatureSource | LMHiddenFeatureSource, cache_dir: Path, batch_size: int = 64
    ):
        self.source, self.batch_size = source, batch_size
        self.dir = cache_dir / source.key
        # fp16 rows (what the disk holds), oldest dropped past MEM_ROWS: a long pretraining run draws
        # hundreds of thousands of windows, and fp32 copies of all of them would not fit in memory
        self._mem: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0

    @property
    def feature_dim(self) -> int:
        return self.source.feature_dim

    def read_text(self, text: str) -> str:
        """The prefix of ``text`` the source reads (what the encoder sees after truncation)."""
        return self.source.read_text(text)

    def _path(self, h: str) -> Path:
        return self.dir / h[:2] / f"{h}.safetensors"

    def _load(self, h: str) -> torch.Tensor | None:
        if h in self._mem:
            return self._mem[h]
        path = self._path(h)
        if not path.is_file():
            return None
        try:
            t = load_file(path)["features"].half()
        except (SafetensorError, KeyError, OSError) as e:
            log.warning("feature_cache_corrupt_recomputing", path=str(path), error=str(e))
            path.unlink(missing_ok=True)
            return None
        self._remember(h, t)
        return t

    def _remember(self, h: str, row: torch.Tensor) -> None:
        self._mem[h] = row
        while len(self._mem) > self.MEM_ROWS:
            del self._mem[next(iter(self._mem))]

    def warm(self, texts: Sequence[str], *, desc: str = "features") -> None:
        """Compute and store features for every uncached text (with a progress bar)."""
        todo = list(dict.fromkeys(t for t in texts if self._load(_hash(t)) is None))
        for i in tqdm(range(0, len(todo), self.batch_size), desc=desc, disable=not todo, leave=False):
            chunk = todo[i : i + self.batch_size]
            feats, mask = self.source.features(chunk)
            for text, f, m in zip(chunk, feats.cpu(), mask.cpu(), strict=True):
                h = _hash(text)
                row = f[m].contiguous()  # (T_real, d_f), padding dropped
                path = self._path(h)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                save_file({"features": row.half()}, tmp)
                os.replace(tmp, path)
                self._remember(h, row.half())
            self.misses += len(chunk)

    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached features, right-padded: ``(B, T, d_f)`` and mask ``(B, T)``."""
        self.warm(texts)
        rows = [self._load(_hash(t)) for t in texts]
        self.hits += len(texts)
        width = max(max(r.shape[0] for r in rows if r is not None), 1)
        feats = torch.zeros(len(rows), width, self.feature_dim)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, r in enumerate(rows):
            assert r is not None
            feats[i, : r.shape[0]] = r.float()
            mask[i, : r.shape[0]] = True
        return feats, mask


def build_feature_source(
    name: str, *, layer: int = -1, max_length: int = 256, cache_dir: Path | None = None, device: str = "cpu"
) -> Any:
    """``minilm-l6`` (or an encoder id) -> encoder features; a causal-LM name -> its hidden states at ``layer``;
    ``bytes`` -> each text's UTF-8 byte ids (the byte encoder, embedded inside the wire; ``max_length`` bytes)."""
    if name == "bytes":
        from latentwire_core.bytes_features import ByteFeatureConfig, ByteIdSource

        return ByteIdSource(ByteFeatureConfig(max_bytes=max_length))
    cache = cache_dir or cache_root() / "features"
    if name == "minilm-l6" or name.startswith("sentence-transformers/"):
        model, tok = load_encoder(name)
        return CachedFeatureSource(
            EncoderFeatureSource(
                model.to(device),  # type: ignore[arg-type]  # transformers types .to oddly
                tok,
                name=name,
                max_length=max_length,
            ),
            cache,
        )
    lm, tok = load_causal_lm(name)
    src = LMHiddenFeatureSource(
        lm.to(device),  # type: ignore[arg-type]
        tok,
        name=name,
        layer=layer,
        max_length=max_length,
    )
    return CachedFeatureSource(src, cache)
