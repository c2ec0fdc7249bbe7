"""Text at a byte budget: ``lm_coded_text`` (the whole text, its bytes coded under a small LM both ends
hold, ``latentwire_eval.lmcode``) and ``truncation_bytes`` (the text cut to the latent message's bytes).

``lm_coded_text`` answers exactly as ``text`` does (the code is lossless: the receiver decodes the same
text), so its row differs from ``text``'s only in ``wire_bytes``: the range coder's bytes for the text
under ``lm_coder`` (default SmolLM2-135M). The first ``lm_coder_verify`` examples (default 8) are decoded
as a receiver would, token by token, and must give the text back; a mismatch stops the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentwire_core.tasks import Example
from latentwire_eval.methods.base import Method, Slots, register_method
from latentwire_eval.methods.text import Text

__all__ = ["LMCodedText", "TruncationBytes"]


@register_method("lm_coded_text")
class LMCodedText(Text):
    """The whole text, its bytes arithmetic-coded under ``lm_coder`` (the byte yardstick at full quality)."""

    task_kinds = Method.ALL_KINDS

    def fit(self) -> None:
        from latentwire_eval.lmcode import LMTextCoder

        def build() -> Any:
            name = str(self.ctx.options.get("lm_coder", "smollm2-135m"))
            folder = self.ctx.resolve_model(name) if self.ctx.resolve_model else Path(name)
            return {"coder": LMTextCoder(folder, device="cpu"), "sizes": {}, "verified": 0}

        self.shared_coder = self.ctx.shared("lm_coder", build)  # the bytes do not depend on the reader

    def slots(self, examples: Sequence[Example]) -> Slots:
        state = self.shared_coder
        coder, sizes = state["coder"], state["sizes"]
        verify = int(self.ctx.options.get("lm_coder_verify", 8))
        out = []
        for e in examples:
            text = self.ctx.text(e)
            if text not in sizes:
                message = coder.encode(text)
                if state["verified"] < verify:
                    got = coder.decode(message)
                    if coder._tokens(got) != coder._tokens(text):
                        raise RuntimeError(
                            f"lm_coded_text: example {e.id} did not decode to its text ({got[:80]!r} ...): "
                            "sender and receiver computed different probabilities"
                        )
                    state["verified"] += 1
                sizes[text] = len(message)
            out.append(sizes[text])
        return [self.ids(e) for e in examples], out


@register_method("truncation_bytes")
class TruncationBytes(Text):
    """The text cut to as many UTF-8 bytes as this example's latent message (frame included), on a
    character boundary, and read as text: truncation at equal bytes rather than equal tokens."""

    task_kinds = Method.ALL_KINDS

    def byte_budget(self, e: Example) -> int:
        from latentwire_core.message import message_bytes

        codec = self.ctx.codec
        if codec is None or "d_z" not in self.ctx.options:
            raise ValueError("truncation_bytes needs the wire's codec and d_z (the latent message's size)")
        return message_bytes(codec, n_tokens=self.ctx.budgets[e.id], d_z=int(self.ctx.options["d_z"]))

    def cut(self, e: Example) -> str:
        """The slot's text cut to the byte budget (a leading space of a context slot counts)."""
        full = self.prompt.slot_text(e)
        return full.encode("utf-8")[: self.byte_budget(e)].decode("utf-8", errors="ignore")

    def ids(self, e: Example) -> list[int]:
        text = self.cut(e)
        return list(self.lm.tokenize([text])[0]) if text.strip() else []

    def slots(self, examples: Sequence[Example]) -> Slots:
        return [self.ids(e) for e in examples], [len(self.cut(e).encode("utf-8")) for e in examples]

    def read(self, e: Example) -> str:
        return self.cut(e)
