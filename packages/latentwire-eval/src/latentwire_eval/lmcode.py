"""Text arithmetic-coded under a small language model both ends hold: the byte yardstick a latent message
must beat (docs/results.md "bytes").

The sender tokenizes the text with the coder LM's tokenizer and range-codes each token, then an end
symbol (the LM's EOS), under the LM's next-token distribution given the tokens before it (the coder
LM's BOS, or EOS when it has none, starts the sequence). The entropy coder is ``constriction``'s range
coder (a maintained library; no hand-written coder). The receiver runs the same LM step by step,
decoding one token per step until the end symbol, and detokenizes. Both ends compute each distribution
the same way (one token at a time with the KV cache, float32 logits, softmax in float64), so on one
machine they agree bit for bit; a different machine or thread count can change a logit's last bit,
which range coding does not forgive (``decode`` then fails or returns another text; ``verify`` says so).

The message is the coder's 32-bit words, little-endian: its size is what ``coded_bytes`` reports (no
frame added; the receiver knows the coder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["LMTextCoder"]


class LMTextCoder:
    """Args:
    folder: a local causal LM folder (transformers format).
    device: torch device.
    max_tokens: the most tokens a text may have (longer texts are refused, not cut).
    """

    def __init__(self, folder: Path, *, device: str = "cpu", max_tokens: int = 1024) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.folder = Path(folder)
        self.tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(folder), trust_remote_code=False, dtype=torch.float32
        )
        self.model = model.to(device).eval()
        self.device, self.max_tokens = device, max_tokens
        eos = self.tok.eos_token_id
        if eos is None:
            raise ValueError(f"{folder}: the coder LM's tokenizer has no EOS token to end a message with")
        self.eos = int(eos)
        bos = self.tok.bos_token_id
        self.start = int(bos) if bos is not None else self.eos

    def _tokens(self, text: str) -> list[int]:
        ids = [int(i) for i in self.tok(text, add_special_tokens=False)["input_ids"]]
        if len(ids) > self.max_tokens:
            raise ValueError(f"a text of {len(ids)} coder tokens is over the coder's {self.max_tokens}")
        return ids

    def _steps(self) -> Any:
        """A generator: send it the next token id, get the distribution of the one after it (float64)."""
        past = None
        token = self.start
        with torch.no_grad():
            while True:
                out = self.model(
                    input_ids=torch.tensor([[token]], device=self.device),
                    past_key_values=past,
                    use_cache=True,
                )
                past = out.past_key_values
                logits = out.logits[0, -1].float().cpu().double()
                probs = torch.softmax(logits, dim=-1).numpy()
                token = yield probs

    def encode(self, text: str) -> bytes:
        """``text`` -> the range coder's words as bytes."""
        import constriction

        ids = [*self._tokens(text), self.eos]
        model = constriction.stream.model.Categorical(perfect=False)
        enc = constriction.stream.queue.RangeEncoder()
        steps = self._steps()
        probs = next(steps)
        for i, t in enumerate(ids):
            enc.encode(np.array([t], dtype=np.int32), model, probs[None, :])
            if i + 1 < len(ids):
                probs = steps.send(t)
        steps.close()
        return bytes(enc.get_compressed().astype("<u4").tobytes())

    def decode(self, message: bytes) -> str:
        """The receiver's side: the text, decoded token by token with the same LM until the end symbol."""
        import constriction

        if len(message) % 4:
            raise ValueError(f"an LM-coded message is whole 32-bit words; got {len(message)} bytes")
        words = np.frombuffer(message, dtype="<u4").astype(np.uint32)
        model = constriction.stream.model.Categorical(perfect=False)
        dec = constriction.stream.queue.RangeDecoder(words)
        steps = self._steps()
        probs = next(steps)
        ids: list[int] = []
        for _ in range(self.max_tokens + 1):
            t = int(dec.decode(model, probs[None, :])[0])
            if t == self.eos:
                steps.close()
                return str(self.tok.decode(ids))
            ids.append(t)
            probs = steps.send(t)
        steps.close()
        raise ValueError(f"no end symbol within {self.max_tokens} tokens: not a message of this coder")

    def coded_bytes(self, text: str) -> int:
        return len(self.encode(text))

    def verify(self, text: str) -> bool:
        """Does the receiver's decode give back exactly ``text``'s tokens?"""
        return self._tokens(self.decode(self.encode(text))) == self._tokens(text)
