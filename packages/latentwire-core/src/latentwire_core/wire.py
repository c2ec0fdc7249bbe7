"""The trainable LatentWire: shared interlingua encoder + one adapter (and gain) per model.

With a compression ratio each example gets its own number of soft tokens ``M_i``;
tensors carry ``M_max`` slots per batch and :meth:`LatentWire.counts` says how many of
them each row really has. Calibration measures each example's RMS over its real slots only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from latentwire_core.adapters import AdapterBank, AdapterConfig
from latentwire_core.calibration import CALIBRATIONS
from latentwire_core.codec import QuantWireCodec
from latentwire_core.config import LatentWireConfig
from latentwire_core.interlingua import build_interlingua, slot_counts, zero_past_counts
from latentwire_core.per_reader import ReaderModules, ReaderParameters
from latentwire_core.slots import CacheSlot, MemorySlot, Segment

__all__ = ["CONTENT_TOKENS", "LatentWire", "LatentWireConfig", "Sent"]

CONTENT_TOKENS = ("rec", "cont")  # learned per-reader vectors that ask to reconstruct / continue


class Sent(NamedTuple):
    """What :meth:`LatentWire.forward` returns: each named reader's soft tokens ``(B, M_max, width)``
    and the wire's own count of real slots per example, ``counts (B,)`` (``M_i``; ``n_tokens`` for a
    fixed M). Everything downstream cuts rows by these counts rather than recomputing them."""

    soft: dict[str, torch.Tensor]
    counts: torch.Tensor


RENAMED_STATE_KEYS = {"gains.": "calibrations."}
"""State-dict key prefixes renamed since (older checkpoints and saved wires load under today's names)."""


def _renamed_state_keys(
    _module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *_: object
) -> None:
    for key in list(state_dict):
        for old, new in RENAMED_STATE_KEYS.items():
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)


class LatentWire(nn.Module):
    """``features -> Z -> (wire) -> adapter_k -> calibrate_k -> soft tokens for model k``.

    Args:
        cfg: encoder/adapter/calibration settings.
        readers: reader name -> ``(d_model, embed_rms)``, the reader's width and its
            cached embedding RMS (the calibration target).
        encoder: a prebuilt encoder (``lm_pool`` needs the LM's layers); default: built from
            ``cfg.interlingua`` by its registry name.
        kv: with ``cfg.inject = "kv"``, model name -> ``(kv_width, kv_rms)``: the adapters then emit a
            deep prefix (every layer's keys and values per slot) at that scale; ``<rec>``/``<cont>``
            stay input embeddings of ``d_model``.
    """

    def __init__(
        self,
        cfg: LatentWireConfig,
        readers: Mapping[str, tuple[int, float]],
        *,
        encoder: nn.Module | None = None,
        kv: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder if encoder is not None else build_interlingua(cfg.interlingua)
        self.refiner: nn.Module | None = None
        if cfg.refiner_layers:
            from latentwire_core.refiner import LatentRefiner

            with torch.random.fork_rng():  # its own RNG stream: adding a refiner moves no other init
                torch.manual_seed(0)
                self.refiner = LatentRefiner(cfg.interlingua.d_z, cfg.refiner_layers, cfg.interlingua.n_heads)
        if cfg.inject in ("kv", "coprocessor"):
            missing = sorted(set(readers) - set(kv or {}))
            if missing:
                raise ValueError(f"inject = 'kv' needs each reader's (kv_width, kv_rms); missing {missing}")
            assert kv is not None
            outputs = {n: kv[n] for n in readers}
        else:
            outputs = dict(readers)
        self.adapters = AdapterBank(
            {
                name: AdapterConfig(
                    kind=cfg.adapter_kind,
                    d_z=cfg.interlingua.d_z,
                    d_model=width,
                    hidden_mult=cfg.adapter_hidden_mult,
                    out_norm=cfg.adapter_out_norm,
                )
                for name, (width, _) in outputs.items()
            }
        )
        # each reader's calibration (parameters only for "learned": its gain, state key
        # calibrations.<reader>.log_gain; "gains." in older checkpoints, read alike)
        self.calibrations = ReaderModules({n: CALIBRATIONS.get(cfg.calibration)() for n in readers})
        self.register_load_state_dict_pre_hook(_renamed_state_keys)  # type: ignore[no-untyped-call]  # torch leaves it untyped
        self.target_rms = {name: float(rms) for name, (_, rms) in outputs.items()}
        # <rec>/<cont> per model, (2, d_model), at the model's embedding scale; deterministic init
        # (no RNG drawn, so adding them never changes the other parameters' initialisation)
        self.content = ReaderParameters(
            {name: nn.Parameter(_content_init(d_model, rms)) for name, (d_model, rms) in readers.items()}
            if cfg.content_tokens
            else {}
        )
        # coprocessor: per reader, a gated network that rewrites its deep prefix after reading the prompt cache
        self.coprocessors: ReaderModules | None = None
        if cfg.inject == "coprocessor":
            from latentwire_core.coprocessor import Coprocessor

            with torch.random.fork_rng():  # its own RNG stream: the deep prefix's init is unchanged
                torch.manual_seed(2)
                self.coprocessors = ReaderModules(
                    {
                        name: Coprocessor(width, cfg.interlingua.d_z, cfg.interlingua.n_heads)
                        for name, (width, _) in outputs.items()
                    }
                )
        # latent adapters: per reader, gated cross-attention blocks at its chosen decoder layers (gates 0)
        self.latent_adapters: ReaderModules | None = None
        if cfg.latent_adapter_layers:
            from latentwire_core.latent_adapters import ReaderLatentAdapters

            with torch.random.fork_rng():  # their own RNG stream: adding them moves no other init
                torch.manual_seed(1)
                self.latent_adapters = ReaderModules(
                    {
                        name: ReaderLatentAdapters(
                            cfg.latent_adapter_layers, d_model, cfg.interlingua.d_z, cfg.interlingua.n_heads
                        )
                        for name, (d_model, _) in readers.items()
                    }
                )

    def counts(self, mask: torch.Tensor) -> torch.Tensor:
        """Soft tokens per example ``(B,)`` for features with ``mask`` ``(B, T)``."""
        ic = self.cfg.interlingua
        return slot_counts(mask, n_tokens=ic.n_tokens, ratio=ic.ratio)

    def forward(self, features: torch.Tensor, mask: torch.Tensor, names: Sequence[str]) -> Sent:
        """One call for DDP: features -> ``Z`` -> soft tokens ``(B, M, d_model)`` per named reader, with
        the counts ``M_i`` the wire used (:class:`Sent`)."""
        counts = self.counts(mask)
        # fixed M: no per-row counts inside, so the fixed-M path computes exactly what it always did
        inner = counts if self.cfg.interlingua.ratio > 0 else None
        z = self.encode(features, mask, inner)
        return Sent({m: self.to_model(z, m, counts=inner) for m in names}, counts)

    def encode(
        self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """features ``(B, T, d_f)``, mask ``(B, T)`` -> ``Z (B, M, d_z)``.

        ``counts`` overrides the per-example ``M_i`` (a shuffled-latent control encodes another
        example's text at this example's M).
        """
        if counts is None and self.cfg.interlingua.ratio > 0:
            counts = self.counts(mask)
        z: torch.Tensor = (
            self.encoder(features, mask) if counts is None else self.encoder(features, mask, counts)
        )
        return z

    @torch.no_grad()
    def send(
        self,
        features: torch.Tensor,
        mask: torch.Tensor,
        codec: QuantWireCodec,
        fingerprint: bytes,
        counts: Sequence[int] | torch.Tensor | None = None,
    ) -> list[bytes]:
        """What a sender puts on the wire: encode a batch and pack one message per example.

        ``counts`` overrides each example's ``M_i`` (an evaluation's budgets, or another example's M for
        the shuffled control); by default they come from ``mask`` (ratio) or are ``n_tokens`` (fixed M).
        The one encode -> pack path of the evaluation, ``PretrainedWire`` and the diagnostics.
        """
        from latentwire_core.message import pack

        dev = next(self.parameters()).device
        c: torch.Tensor | None = None
        if counts is not None:
            c = torch.as_tensor(counts, dtype=torch.long)
        elif self.cfg.interlingua.ratio > 0:
            c = self.counts(mask)
        z = self.encode(features.to(dev), mask.to(dev), None if c is None else c.to(dev))
        m = c.tolist() if c is not None else [z.shape[1]] * z.shape[0]
        return [pack(z[i, : m[i]], codec, fingerprint) for i in range(z.shape[0])]

    def to_model(
        self,
        z: torch.Tensor,
        model: str,
        *,
        counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``Z (B, M, d_z)`` -> soft tokens ``(B, M, d_model)`` for ``model``.

        ``Z`` is what the receiver unpacked (the message path: ``latentwire_core.message``). With
        ``counts``, slots past each row's ``M_i`` are zero and calibration sees only the real ones.
        """
        if self.refiner is not None:
            z = self.refiner(z, counts)
        soft = zero_past_counts(self.adapters(z, model), counts)
        out: torch.Tensor = self.calibrations[model](soft, target_rms=self.target_rms[model], counts=counts)
        return out

    def adapt(self, z_rows: Sequence[torch.Tensor], model: str) -> list[Segment]:
        """What ``model``'s slots receive from received ``Z`` rows ``(M_i, d_z)`` (the last step of the
        message path: encode -> pack -> unpack -> **adapt**): refiner, adapter and calibration, one batched
        call when every row has the same M, then :meth:`slot` per row."""
        dev = next(self.parameters()).device
        if len({z.shape[0] for z in z_rows}) == 1:  # one M for the batch: one batched call
            soft = list(self.to_model(torch.stack(list(z_rows)).to(dev), model))  # (B, M, width)
        else:
            soft = [self.to_model(z[None].to(dev), model)[0] for z in z_rows]  # (M_i, width)
        return [self.slot(s, model) for s in soft]

    def slot(self, soft: torch.Tensor, model: str) -> Segment:
        """What ``model``'s prompt slot receives for one example's soft tokens ``(M_i, width)``: the
        tokens themselves, or with latent adapters a :class:`~latentwire_core.slots.MemorySlot` that
        its hidden states also cross-attend to, or with a coprocessor a
        :class:`~latentwire_core.slots.CacheSlot` it rewrites after reading the reader's cached prompt."""
        if self.coprocessors is not None:
            return CacheSlot(soft, self.coprocessors[model])
        if self.latent_adapters is None:
            return soft
        return MemorySlot(soft, self.latent_adapters[model])

    def content_token(self, model: str, which: str) -> torch.Tensor:
        """The learned ``<rec>`` or ``<cont>`` vector of ``model``: ``(1, d_model)``."""
        if model not in self.content:
            raise KeyError(f"no content tokens for {model!r}: set content_tokens (a [pretrain] stage)")
        vec: torch.Tensor = self.content[model][CONTENT_TOKENS.index(which)]
        return vec[None]


def _content_init(d_model: int, rms: float) -> torch.Tensor:
    # two fixed, distinct, embedding-scale directions: alternating signs, and a slow cosine
    i = torch.arange(d_model, dtype=torch.float32)
    rec = torch.where(i % 2 == 0, 1.0, -1.0)
    cont = torch.cos(i * 0.37) * 2**0.5
    return torch.stack([rec, cont]) * rms
