"""The latent and its controls: the trained wire (encode, pack, unpack, adapt: exactly what a receiver
gets), another example's latent, an all-zero latent, and the equal-training soft-prompt control."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from latentwire_core.tasks import Example
from latentwire_eval.methods.base import Method, Slots, register_method

if TYPE_CHECKING:
    import torch

    from latentwire_core.slots import Segment

__all__ = ["Latent", "LatentShuffled", "LatentZero", "TextSoftPrompt"]


@register_method("text_soft_prompt")
class TextSoftPrompt(Method):
    """The equal-training control: a learned soft prompt before the whole text."""

    fits_on_train = True
    uses = frozenset({"control"})

    def slots(self, examples: Sequence[Example]) -> Slots:
        import torch

        from latentwire_core.soft_prompt import SoftPromptControl

        control = self.ctx.control
        if control is None:
            raise ValueError("text_soft_prompt needs the trained control (the control stage)")
        with torch.no_grad():
            p = control.prompts[self.reader].detach().to(self.ctx.device)
            rows = [
                SoftPromptControl.slot(
                    p, self.lm.embed(torch.tensor([self.text_ids(e) or [self.prompt.eos]]))[0]
                )
                for e in examples
            ]
        return rows, [0] * len(examples)  # type: ignore[return-value]


@register_method("latent")
class Latent(Method):
    """The trained wire: encoder -> one message per example (header, codec payload, CRC32) -> adapter."""

    task_kinds = Method.ALL_KINDS

    uses = frozenset({"wire"})

    def source_of(self, e: Example) -> Example:
        """Whose text this example's latent encodes (its own)."""
        return e

    def slots(self, examples: Sequence[Example]) -> Slots:
        texts = [self.ctx.text(self.source_of(e)) for e in examples]
        return self.latent_of(texts, [self.ctx.budgets[e.id] for e in examples])

    def read(self, e: Example) -> str:
        return self.ctx.feature_source(self.name).read_text(self.ctx.text(self.source_of(e)))

    def latent_of(self, texts: list[str], counts: list[int]) -> Slots:
        """Encode, pack, unpack and adapt: exactly what a receiver gets."""
        from latentwire_core.message import receive

        wire, codec = self.ctx.wire, self.ctx.codec
        if wire is None or codec is None:
            raise ValueError(f"{self.name} needs a trained wire and its codec")
        feats, mask = self.ctx.feature_source(self.name).features(texts)
        msgs = wire.send(feats, mask, codec, self.ctx.fingerprint, counts)
        rx = receive(msgs, fingerprint=self.ctx.fingerprint, d_z=wire.cfg.interlingua.d_z, codec=codec)
        return self.to_reader(rx), [len(m) for m in msgs]

    def to_reader(self, z_rows: list[torch.Tensor]) -> list[Segment]:
        assert self.ctx.wire is not None
        return self.ctx.wire.adapt(z_rows, self.reader)


@register_method("latent_shuffled")
class LatentShuffled(Latent):
    """Control: another example's latent (a fixed derangement), cut to this example's M_i."""

    requires = ("latent",)

    def source_of(self, e: Example) -> Example:
        return self.ctx.partner[e.id]


@register_method("latent_zero")
class LatentZero(Latent):
    """Control: an all-zero ``Z`` of this example's M_i through the same codec and adapter (what the
    reader makes of the wire's bias alone, with no text behind it)."""

    requires = ("latent",)

    def latent_of(self, texts: list[str], counts: list[int]) -> Slots:
        import torch

        from latentwire_core.message import pack, receive

        wire, codec = self.ctx.wire, self.ctx.codec
        if wire is None or codec is None:
            raise ValueError(f"{self.name} needs a trained wire and its codec")
        d_z = wire.cfg.interlingua.d_z
        with torch.no_grad():
            msgs = [pack(torch.zeros(m, d_z), codec, self.ctx.fingerprint) for m in counts]
            rx = receive(msgs, fingerprint=self.ctx.fingerprint, d_z=d_z, codec=codec)
            return self.to_reader(rx), [len(msg) for msg in msgs]
