"""A trained wire outside the runner: save, load, encode texts into messages, decode for a reader.

A saved wire is a folder with

* ``wire.json``: everything needed to rebuild it (the core config, the frozen feature source,
  the ``lm_pool`` trunk options, each reader's width and embedding RMS, the task and what is
  compressed, the codec, the message format version and the encoder fingerprint);
* ``wire.safetensors``: the encoder's and adapters' weights (and ``<rec>``/``<cont>``, learned calibrations).

A run folder is loadable too: the runner writes ``wire.json`` into it, and the weights come from
its last verifying checkpoint (or a named step). Nothing is unpickled; no runner is imported.

    wire = PretrainedWire.from_pretrained("runs/quickstart")
    msg = wire.encode(["a gripping, funny film"])[0]          # bytes: message format v1
    soft = wire.soft_tokens(msg, "gemma3-270m")               # (M, d_model) for that reader
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latentwire_core import LatentWire
from latentwire_core.codec import QuantWireCodec
from latentwire_core.config import InterlinguaConfig, LatentWireConfig, WireCodecConfig
from latentwire_core.interlingua import build_interlingua
from latentwire_core.jsonio import JSONDepthError, read_json
from latentwire_core.message import FORMAT_VERSION, encoder_fingerprint, receive
from latentwire_core.slots import Segment
from latentwire_core.tasks import get_task
from latentwire_hf import config as _hf_config  # noqa: F401  (declares the lm_pool encoder name)
from latentwire_hf.checkpoint import CheckpointError, latest_checkpoint, load_weights, verify_checkpoint

__all__ = ["SPEC_FILE", "WEIGHTS_FILE", "PretrainedWire", "UnknownReaderError", "WireSpec"]

SPEC_FILE = "wire.json"
WEIGHTS_FILE = "wire.safetensors"


class UnknownReaderError(KeyError):
    """A reader this wire has no adapter for."""

    def __str__(self) -> str:
        return str(self.args[0])


@attrs.frozen(kw_only=True)
class WireSpec:
    """What ``wire.json`` holds (JSON-able)."""

    wire: dict[str, Any]  # LatentWireConfig, with its interlingua nested
    features: dict[str, Any]  # source, layer, max_length
    lm_encoder: dict[str, Any] | None  # start_layer, n_layers, causal, train, lora_rank (lm_pool only)
    readers: dict[str, dict[str, float]]  # name -> d_model, embed_rms
    task: str
    compress: str
    codec: dict[str, Any]
    format_version: int = FORMAT_VERSION
    seed: int = 0
    fingerprint: str = ""  # hex; filled in when weights are saved

    def core_config(self) -> LatentWireConfig:
        rest = {k: v for k, v in self.wire.items() if k != "interlingua"}
        return LatentWireConfig(interlingua=InterlinguaConfig(**self.wire["interlingua"]), **rest)

    def encoder_identity(self) -> dict[str, Any]:
        """What the fingerprint hashes beside the encoder's weights."""
        return {
            "interlingua": self.wire["interlingua"],
            "features": self.features,
            "lm_encoder": self.lm_encoder,
        }

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> WireSpec:
        try:
            data = read_json(path, max_bytes=16 * 2**20)
            spec = cls(**data)
        except (OSError, JSONDepthError, TypeError) as e:
            raise CheckpointError(f"{path}: not a readable wire description ({e})") from e
        if spec.format_version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: message format version {spec.format_version}; this library reads {FORMAT_VERSION}"
            )
        return spec


def spec_from_core(
    cfg: LatentWireConfig,
    *,
    features: Mapping[str, Any],
    lm_encoder: Mapping[str, Any] | None,
    readers: Mapping[str, tuple[int, float]],
    task: str,
    compress: str,
    codec: WireCodecConfig,
    seed: int = 0,
    kv: Mapping[str, tuple[int, float]] | None = None,
) -> WireSpec:
    """``kv``: each reader's ``(kv_width, kv_rms)`` for a deep-prefix wire. ``inject`` and the kv sizes
    are written only for such a wire, so an embeddings wire's ``wire.json`` reads as before."""
    wire = attrs.asdict(cfg)
    if wire.get("inject") == "embeddings":
        del wire["inject"]
    if not wire.get("refiner_layers"):
        del wire["refiner_layers"]  # written only for a wire with a refiner: older wire.json files read alike
    if not wire.get("latent_adapter_layers"):
        del wire["latent_adapter_layers"]  # likewise only for a wire with latent adapters
    return WireSpec(
        wire=wire,
        features=dict(features),
        lm_encoder=dict(lm_encoder) if lm_encoder is not None else None,
        readers={
            n: {
                "d_model": int(d),
                "embed_rms": float(r),
                **({"kv_width": int(kv[n][0]), "kv_rms": float(kv[n][1])} if kv else {}),
            }
            for n, (d, r) in readers.items()
        },
        task=task,
        compress=compress,
        codec=attrs.asdict(codec),
        seed=seed,
    )


def build_wire(spec: WireSpec) -> LatentWire:
    """An untrained :class:`LatentWire` of the spec's shape (weights are loaded afterwards)."""
    cfg = spec.core_config()
    torch.manual_seed(spec.seed)
    encoder = None
    if spec.lm_encoder is not None:
        from latentwire_hf.models import load_causal_lm

        trunk, _ = load_causal_lm(spec.features["source"], seed=spec.seed)
        encoder = build_interlingua(cfg.interlingua, lm=trunk, **spec.lm_encoder)
        del trunk
    elif spec.features.get("source") == "bytes":
        encoder = byte_encoder(cfg, int(spec.features["max_length"]))
    readers = {n: (int(r["d_model"]), float(r["embed_rms"])) for n, r in spec.readers.items()}
    kv = {n: (int(r["kv_width"]), float(r["kv_rms"])) for n, r in spec.readers.items() if "kv_width" in r}
    return LatentWire(cfg, readers, encoder=encoder, kv=kv or None)


def byte_encoder(cfg: LatentWireConfig, max_bytes: int) -> nn.Module:
    """``[features] source = "bytes"``: a trainable byte front (embedding, positions, 2 Transformer layers
    of width ``cfg.interlingua.d_in``) before the configured interlingua encoder."""
    from latentwire_core.bytes_features import ByteFeatureConfig, ByteFeatureSource, ByteFrontEncoder

    ic = cfg.interlingua
    front = ByteFeatureSource(ByteFeatureConfig(max_bytes=max_bytes, d_f=ic.d_in))
    return ByteFrontEncoder(front, build_interlingua(ic))


class PretrainedWire:
    """A trained encoder + adapters with its feature source and codec, ready to send and receive."""

    def __init__(self, spec: WireSpec, wire: LatentWire, *, device: str | torch.device = "cpu") -> None:
        self.spec, self.wire, self.device = spec, wire.eval().to(device), torch.device(device)
        self.codec = QuantWireCodec(WireCodecConfig(**spec.codec))
        self.fingerprint = encoder_fingerprint(self.wire.encoder, spec.encoder_identity())
        if spec.fingerprint and spec.fingerprint != self.fingerprint.hex():
            raise CheckpointError(
                f"encoder fingerprint {self.fingerprint.hex()} differs from the saved {spec.fingerprint}"
            )
        self._features: Any = None

    # --- loading and saving ---------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], *, step: int | None = None, device: str | torch.device = "cpu"
    ) -> PretrainedWire:
        """Load from a saved folder (``wire.json`` + ``wire.safetensors``) or a run folder
        (``wire.json`` + ``checkpoints/``: the last verifying checkpoint, or ``step``)."""
        root = Path(path)
        spec_path = root / SPEC_FILE
        if not spec_path.is_file():
            raise FileNotFoundError(f"{spec_path} is missing: not a saved wire or a run folder with a wire")
        spec = WireSpec.read(spec_path)
        wire = build_wire(spec)
        if (root / WEIGHTS_FILE).is_file() and step is None:
            try:
                state = load_file(str(root / WEIGHTS_FILE))
                wire.load_state_dict(state)
            except Exception as e:  # safetensors raises its own types for damaged files
                raise CheckpointError(f"{root / WEIGHTS_FILE}: cannot be loaded into this wire ({e})") from e
        else:
            ckpts = root / "checkpoints"
            ckpt = ckpts / f"step_{step:06d}" if step is not None else latest_checkpoint(ckpts)
            if ckpt is None or not ckpt.is_dir():
                raise FileNotFoundError(
                    f"no checkpoint {'step ' + str(step) if step is not None else ''} in {ckpts}"
                )
            verify_checkpoint(ckpt)
            load_weights(ckpt, wire)
        return cls(attrs.evolve(spec, fingerprint=""), wire, device=device)

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write ``wire.json`` and ``wire.safetensors`` (atomically, each through a temporary file)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.wire.state_dict().items()}
        tmp = out / (WEIGHTS_FILE + ".tmp")
        save_file(state, str(tmp))
        os.replace(tmp, out / WEIGHTS_FILE)
        write_spec(out, attrs.evolve(self.spec, fingerprint=self.fingerprint.hex()))
        return out

    # --- sending and receiving ------------------------------------------------------------------
    @property
    def readers(self) -> list[str]:
        return sorted(self.spec.readers)

    def features(self) -> Any:
        if self._features is None:
            from latentwire_hf.features import build_feature_source

            f = self.spec.features
            self._features = build_feature_source(
                f["source"], layer=f["layer"], max_length=f["max_length"], device=str(self.device)
            )
        return self._features

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> list[bytes]:
        """Texts (what the wire compresses: the context in ``compress = "context"``) -> messages."""
        if not texts:
            return []
        feats, mask = self.features().features(list(texts))
        return self.wire.send(feats, mask, self.codec, self.fingerprint)

    def _received(self, message: bytes, reader: str) -> torch.Tensor:
        """One message checked against this wire (reader, fingerprint, d_z, M) and unpacked: ``Z (M, d_z)``."""
        if reader not in self.spec.readers:
            raise UnknownReaderError(
                f"this wire has no adapter for {reader!r}; its readers: {', '.join(self.readers)}"
            )
        ic = self.wire.cfg.interlingua
        (z,) = receive(
            [message], fingerprint=self.fingerprint, d_z=ic.d_z, max_tokens=ic.n_tokens, codec=self.codec
        )
        return z

    @torch.no_grad()
    def soft_tokens(self, message: bytes, reader: str) -> torch.Tensor:
        """One message -> ``(M, d_model)`` soft tokens for ``reader`` (checks run first); for a deep-prefix
        wire ``(M, kv_width)``, the reader's per-layer keys and values (``SlotPrompt`` routes them)."""
        return self.wire.to_model(self._received(message, reader)[None].to(self.device), reader)[0]

    @torch.no_grad()
    def slot(self, message: bytes, reader: str) -> Segment:
        """One message -> what ``reader``'s prompt slot receives (``SlotPrompt`` takes it): the message path's
        last step (``LatentWire.adapt``), so with latent adapters a memory slot, with a coprocessor a cache slot."""
        return self.wire.adapt([self._received(message, reader)], reader)[0]

    @property
    def task(self) -> Any:
        return get_task(self.spec.task)

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.wire.state_dict().items()}


def write_spec(path: Path, spec: WireSpec) -> None:
    """Write ``wire.json`` atomically (a saved wire, or a run folder when the runner builds its wire)."""
    tmp = path / (SPEC_FILE + ".tmp")
    tmp.write_text(spec.to_json(), encoding="utf-8")
    os.replace(tmp, path / SPEC_FILE)
