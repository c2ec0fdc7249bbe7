"""A fake :class:`~latentwire_core.ports.FrozenLM` for tests: a tiny causal Transformer.

Real weights are not needed to test alignment, masking, training loops or the
runner; this model is random (seeded) but a real causal LM, with a character
tokenizer whose PAD equals EOS, like many real tokenizers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from latentwire_core.stopping import line_complete

__all__ = ["FakeFrozenLM"]


class FakeFrozenLM(nn.Module):
    """Causal Transformer over characters. ids: 0 = BOS, 1 = EOS = PAD, 2.. = characters."""

    BOS, EOS = 0, 1

    def __init__(
        self,
        name: str = "fake-lm",
        *,
        d_model: int = 32,
        n_layers: int = 2,
        vocab: int = 100,
        seed: int = 0,
        embed_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.vocab = vocab
        self._embed_scale = embed_scale
        with torch.random.fork_rng():  # seeded weights without touching the caller's RNG
            torch.manual_seed(seed)
            self.tok = nn.Embedding(vocab, d_model)
            self.pos = nn.Embedding(512, d_model)
            layer = nn.TransformerEncoderLayer(
                d_model, 4, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True
            )
            self.body = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab, bias=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def d_model(self) -> int:
        return int(self.tok.embedding_dim)

    @property
    def vocab_size(self) -> int:
        return int(self.vocab)

    @property
    def special_ids(self) -> dict[str, int | None]:
        return {"bos": self.BOS, "eos": self.EOS, "pad": self.EOS}

    @property
    def embed_rms(self) -> float:
        return float(self.embed(torch.arange(self.vocab)[None]).pow(2).mean().sqrt())

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [[2 + (ord(c) % (self.vocab - 2)) for c in t] for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i - 2) for i in ids if i >= 2)

    def prompt_parts(
        self, instruction: str, after: str = "", anchor: str = ""
    ) -> tuple[list[int], list[int]]:
        prefix = [self.BOS, *self.tokenize([f"U:{instruction}"])[0]]
        return prefix, self.tokenize([f"{after}\nA:{anchor}"])[0]

    @property
    def decoder_layers(self) -> list[nn.Module]:
        """The encoder-as-decoder's layers (latent adapters hook their outputs)."""
        return list(self.body.layers)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.tok(ids) * self._embed_scale
        return out

    def prefix_cache(self, ids: Sequence[int]) -> tuple[int, ...]:
        """A trivial cache: the prefix's ids (this model runs them again with every batch)."""
        if not ids:
            raise ValueError("empty prefix")
        return tuple(ids)

    def hidden_states(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        *,
        prefix: tuple[int, ...] | None = None,
    ) -> torch.Tensor:
        """Positions come from the mask (``position_ids`` of right-padded rows say the same)."""
        if prefix is not None:
            if bool((attention_mask[:, 0] == 0).any()):
                raise ValueError("with a prefix cache the continuation must be right-padded")
            b, p = inputs_embeds.shape[0], len(prefix)
            head = self.embed(torch.tensor([list(prefix)], device=inputs_embeds.device)).expand(b, -1, -1)
            mask = torch.cat([attention_mask.new_ones(b, p), attention_mask], dim=1)
            return self.hidden_states(torch.cat([head.to(inputs_embeds.dtype), inputs_embeds], dim=1), mask)[
                :, p:
            ]
        mask = attention_mask.bool()
        pos = ((mask.long().cumsum(1) - 1).clamp(min=0)) * mask  # (B, T)
        x = inputs_embeds + self.pos(pos)
        t = x.shape[1]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
        # causal AND not padding; every query may see itself so padded rows stay finite
        allowed = ~causal[None] & mask[:, None, :]  # (B, T, T)
        allowed |= torch.eye(t, dtype=torch.bool, device=x.device)[None]
        attn = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(~allowed, float("-inf"))
        attn = attn.repeat_interleave(4, dim=0)  # (B * heads, T, T)
        h = self.body(x, mask=attn)
        out: torch.Tensor = self.norm(h)
        return out

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(hidden)
        return out

    @torch.no_grad()
    def generate(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        stop_at_line: bool = False,
    ) -> list[list[int]]:
        emb, mask = inputs_embeds, attention_mask
        out: list[list[int]] = [[] for _ in range(emb.shape[0])]
        done = torch.zeros(emb.shape[0], dtype=torch.bool)
        for _ in range(max_new_tokens):
            nxt = self.logits(self.hidden_states(emb, mask)[:, -1]).argmax(-1)  # (B,)
            for i, tok in enumerate(nxt.tolist()):
                if not done[i]:
                    if tok == self.EOS:
                        done[i] = True
                    else:
                        out[i].append(tok)
                        if stop_at_line and line_complete(self.decode(out[i])):
                            done[i] = True
            if bool(done.all()):
                break
            emb = torch.cat([emb, self.embed(nxt[:, None])], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return out
