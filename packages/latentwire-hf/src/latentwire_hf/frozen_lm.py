"""A :class:`~latentwire_core.ports.FrozenLM` over any Hugging Face causal LM."""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch
from transformers import (
    DynamicCache,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteriaList,
)

from latentwire_core.stopping import line_complete
from latentwire_hf.decoding import LineStop, PrefixCache
from latentwire_hf.models import cache_root, load_causal_lm

__all__ = ["HFFrozenLM", "load_frozen_lm"]

_SLOT = "\u0000SLOT\u0000"


class HFFrozenLM:
    """Frozen causal LM: parameters never train, gradients reach only ``inputs_embeds``.

    Args:
        name: registry name (used for cache keys and adapter names).
        model: the causal LM (put in eval mode and frozen here).
        tokenizer: its tokenizer.
    """

    def __init__(self, name: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.name = name
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.base = getattr(model, model.base_model_prefix)  # body without the LM head
        self._rms: float | None = None
        self._fingerprint: str | None = None
        text_cfg = getattr(model.config, "text_config", model.config)
        self._softcap = getattr(text_cfg, "final_logit_softcapping", None)

    # --- ids ---------------------------------------------------------------------------------
    @property
    def d_model(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def fingerprint(self) -> str:
        """A cheap identity of the weights (:func:`~latentwire_hf.models.weights_fingerprint`)."""
        if self._fingerprint is None:
            from latentwire_hf.models import weights_fingerprint

            self._fingerprint = weights_fingerprint(self.model)
        return self._fingerprint

    @property
    def vocab_size(self) -> int:
        """Rows of the input embedding table."""
        return int(self.model.get_input_embeddings().weight.shape[0])

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def special_ids(self) -> dict[str, int | None]:
        t = self.tokenizer
        eos = t.eos_token_id
        pad = t.pad_token_id if t.pad_token_id is not None else eos
        return {"bos": t.bos_token_id, "eos": eos, "pad": pad}

    @property
    def stop_ids(self) -> list[int]:
        ids = {self.special_ids["eos"]}
        cfg_eos = self.model.generation_config.eos_token_id if self.model.generation_config else None
        if isinstance(cfg_eos, int):
            ids.add(cfg_eos)
        elif isinstance(cfg_eos, list):
            ids.update(cfg_eos)
        return sorted(i for i in ids if i is not None)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        out: list[list[int]] = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt_parts(
        self, instruction: str, after: str = "", anchor: str = ""
    ) -> tuple[list[int], list[int]]:
        """Ids around the slot: ``[BOS][user header] instruction <SLOT> after [assistant header] anchor``.

        Uses the chat template where the tokenizer has one, else a plain
        ``instruction <SLOT> after\\n anchor`` with BOS (Gemma3-270M base has none).
        """
        if self.has_chat_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": f"{instruction}{_SLOT}{after}"}],
                add_generation_prompt=True,
                tokenize=False,
            )
            before_s, after_s = str(text).split(_SLOT)
            after_s += anchor
        else:
            before_s, after_s = instruction, f"{after}\n{anchor}"
        before = self.tokenize([before_s])[0]
        bos = self.special_ids["bos"]
        # a chat template writes its own BOS (or none); the plain template starts with one
        if bos is not None and (not before or before[0] != bos) and not self.has_chat_template:
            before = [bos, *before]
        return before, self.tokenize([after_s])[0]

    # --- tensors -----------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, T)`` -> ``(B, T, d_model)`` from the embedding *module* (Gemma3 scales by sqrt(d))."""
        out: torch.Tensor = self.model.get_input_embeddings()(ids.to(self.device))
        return out

    @property
    def embed_rms(self) -> float:
        """RMS of the embedding module's output over the whole vocabulary; cached on disk per model."""
        if self._rms is None:
            path = cache_root() / "stats" / f"{self.name.replace('/', '__')}.json"
            if path.is_file() and not self.name.startswith("tiny-"):
                self._rms = float(json.loads(path.read_text())["embed_rms"])
            else:
                vocab = self.model.get_input_embeddings().weight.shape[0]
                total, count = 0.0, 0
                with torch.no_grad():
                    for start in range(0, vocab, 8192):
                        ids = torch.arange(start, min(start + 8192, vocab), device=self.device)[None]
                        e = self.embed(ids).float()
                        total += float(e.pow(2).sum())
                        count += e.numel()
                self._rms = (total / count) ** 0.5
                if not self.name.startswith("tiny-"):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"embed_rms": self._rms, "vocab": vocab}))
        return self._rms

    @torch.no_grad()
    def prefix_cache(self, ids: Sequence[int]) -> PrefixCache:
        """Run the constant prefix once and keep its keys/values (no gradient needed)."""
        if not ids:
            raise ValueError("empty prefix")
        emb = self.embed(torch.tensor([list(ids)], device=self.device))
        out = self.base(inputs_embeds=emb, use_cache=True)
        cache = out.past_key_values
        layers = tuple((layer.keys.detach(), layer.values.detach()) for layer in cache.layers)
        return PrefixCache(ids=tuple(ids), layers=layers)

    def hidden_states(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        *,
        prefix: PrefixCache | None = None,
    ) -> torch.Tensor:
        """Last hidden states ``(B, T, d_model)``; no logits are computed here.

        With ``prefix``, the batch continues that cached prefix: rows must be
        right-padded (the prefix is real for every row) and positions start at
        ``prefix.length``.
        """
        mask = attention_mask.long().to(self.device)
        if position_ids is None:
            position_ids = (mask.cumsum(1) - 1).clamp(min=0) * mask
        position_ids = position_ids.to(self.device)
        kwargs: dict[str, object] = {"use_cache": False}
        if prefix is not None:
            if bool((mask[:, 0] == 0).any()):
                raise ValueError("with a prefix cache the continuation must be right-padded")
            b, p = inputs_embeds.shape[0], prefix.length
            data = [(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in prefix.layers]
            kwargs = {
                "use_cache": True,
                "past_key_values": DynamicCache(ddp_cache_data=data, config=self.model.config),
            }
            mask = torch.cat([mask.new_ones(b, p), mask], dim=1)  # (B, P + T)
            position_ids = position_ids + p
        out = self.base(
            inputs_embeds=inputs_embeds.to(self.device),
            attention_mask=mask,
            position_ids=position_ids,
            **kwargs,
        )
        hidden: torch.Tensor = out.last_hidden_state
        return hidden

    @property
    def decoder_layers(self) -> list[torch.nn.Module]:
        """The body's decoder layers in order (latent adapters hook their outputs)."""
        return list(self.base.layers)

    # --- deep prefix: per-layer keys and values in the slot ---------------------------------------
    @property
    def kv_layout(self) -> tuple[int, int, int]:
        """``(layers, key/value heads, head dim)`` of the attention cache."""
        c = getattr(self.model.config, "text_config", self.model.config)
        heads = int(c.num_attention_heads)
        head_dim = int(getattr(c, "head_dim", None) or c.hidden_size // heads)
        return int(c.num_hidden_layers), int(getattr(c, "num_key_value_heads", None) or heads), head_dim

    @property
    def kv_width(self) -> int:
        """Numbers per slot of a deep prefix: every layer's key and value, ``layers * 2 * heads * dim``."""
        n_layers, n_kv, hd = self.kv_layout
        return n_layers * 2 * n_kv * hd

    @property
    def kv_rms(self) -> float:
        """RMS of the keys and values this model computes for a fixed English sentence (the scale a
        deep prefix is calibrated to, as ``embed_rms`` is for input embeddings); cached per instance."""
        if getattr(self, "_kv_rms", None) is None:
            ids = self.tokenize(["The quick brown fox jumps over the lazy dog near the river bank."])[0]
            cache = self.prefix_cache(ids)
            sq = sum(float(k.float().pow(2).sum() + v.float().pow(2).sum()) for k, v in cache.layers)
            n = sum(k.numel() + v.numel() for k, v in cache.layers)
            self._kv_rms: float | None = (sq / n) ** 0.5
        assert self._kv_rms is not None
        return self._kv_rms

    def _kv_cache(
        self,
        prefix: PrefixCache | None,
        kv: torch.Tensor,
        kv_mask: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        """``[prefix][slot keys/values]`` as one cache for ``B`` rows, the mask over cache + continuation,
        and the continuation's position ids (each row continues after its own ``M``).

        ``kv`` ``(B, M, kv_width)`` holds, per slot, every layer's key then value (heads x dim each):
        reshaped to ``(B, heads, M, dim)`` per layer. Slots past a row's ``kv_mask`` are never attended.
        The injected keys are used as given (no rotary embedding is applied to cached keys).
        """
        b, m, width = kv.shape
        n_layers, n_kv, hd = self.kv_layout
        if width != self.kv_width:
            raise ValueError(f"{self.name}: a deep-prefix slot has {self.kv_width} numbers, got {width}")
        dtype = next(self.model.parameters()).dtype
        per = kv.to(self.device, dtype).view(b, m, n_layers, 2, n_kv, hd).permute(2, 3, 0, 4, 1, 5)
        data = []
        for layer in range(n_layers):  # per layer (B, heads, P + M, dim)
            k, v = per[layer, 0], per[layer, 1]
            if prefix is not None:
                pk, pv = prefix.layers[layer]
                k = torch.cat([pk.expand(b, -1, -1, -1).to(dtype), k], dim=2)
                v = torch.cat([pv.expand(b, -1, -1, -1).to(dtype), v], dim=2)
            data.append((k, v))
        p = prefix.length if prefix is not None else 0
        kv_mask = kv_mask.long().to(self.device)
        mask = attention_mask.long().to(self.device)
        start = p + kv_mask.sum(dim=1)  # (B,) the position of each row's first token after its slot
        position_ids = start[:, None] + (mask.cumsum(1) - 1).clamp(min=0) * mask
        full = torch.cat([kv_mask.new_ones(b, p), kv_mask, mask], dim=1)  # (B, P + M + T)
        return DynamicCache(ddp_cache_data=data, config=self.model.config), full, position_ids

    def hidden_states_kv(
        self,
        kv: torch.Tensor,
        kv_mask: torch.Tensor,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        prefix: PrefixCache | None = None,
    ) -> torch.Tensor:
        """Last hidden states ``(B, T, d_model)`` of a right-padded continuation that follows
        ``[prefix][deep-prefix slot]``; positions continue after each row's own ``M``."""
        if bool((attention_mask[:, 0] == 0).any()):
            raise ValueError("after a deep prefix the continuation must be right-padded")
        cache, full_mask, position_ids = self._kv_cache(prefix, kv, kv_mask, attention_mask)
        out = self.base(
            inputs_embeds=inputs_embeds.to(self.device),
            attention_mask=full_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
        )
        hidden: torch.Tensor = out.last_hidden_state
        return hidden

    @torch.no_grad()
    def generate_kv(
        self,
        kv: torch.Tensor,
        kv_mask: torch.Tensor,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        prefix: PrefixCache | None = None,
        max_new_tokens: int,
        stop_at_line: bool = False,
    ) -> list[list[int]]:
        """Greedy generation after ``[prefix][deep-prefix slot]`` from a *left-padded* continuation.

        Same stopping rules as :meth:`generate` (stop ids; with ``stop_at_line`` a complete first line).
        """
        if bool((attention_mask[:, -1] == 0).any()):
            raise ValueError("generate_kv() needs left padding: every row must end with a real token")
        cache, full_mask, pos = self._kv_cache(prefix, kv, kv_mask, attention_mask)
        embeds = inputs_embeds.to(self.device)
        b = embeds.shape[0]
        stops = set(self.stop_ids)
        rows: list[list[int]] = [[] for _ in range(b)]
        done = [False] * b
        for _ in range(max_new_tokens):
            out = self.model(
                inputs_embeds=embeds,
                attention_mask=full_mask,
                position_ids=pos,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            nxt = out.logits[:, -1].argmax(-1)  # (B,); softcapping (Gemma3) is monotone
            for i, tok in enumerate(nxt.tolist()):
                if done[i]:
                    continue
                if tok in stops:
                    done[i] = True
                    continue
                rows[i].append(tok)
                if stop_at_line and line_complete(self.decode(rows[i])):
                    done[i] = True
            if all(done):
                break
            cache = out.past_key_values
            embeds = self.embed(nxt[:, None])
            full_mask = torch.cat([full_mask, full_mask.new_ones(b, 1)], dim=1)
            pos = pos[:, -1:] + 1
        return rows

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM head on selected states ``(N, d_model)`` -> ``(N, V)`` (softcapping applied if the model has it)."""
        logits: torch.Tensor = self.model.get_output_embeddings()(hidden)
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    @torch.no_grad()
    def generate(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        stop_at_line: bool = False,
    ) -> list[list[int]]:
        """Greedy generation from *left-padded* embeddings with KV cache; stops at the stop ids,
        and with ``stop_at_line`` also once a row's first line is complete (its ids kept up to
        the token that completed it)."""
        if bool((attention_mask[:, -1] == 0).any()):
            raise ValueError("generate() needs left padding: every row must end with a real token")
        criteria = StoppingCriteriaList([LineStop(self.decode)]) if stop_at_line else None
        out = self.model.generate(
            inputs_embeds=inputs_embeds.to(self.device),
            attention_mask=attention_mask.to(self.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.stop_ids,
            pad_token_id=self.special_ids["pad"],
            use_cache=True,
            stopping_criteria=criteria,
        )
        stops = set(self.stop_ids)
        rows: list[list[int]] = []
        for row in out.tolist():
            kept: list[int] = []
            for tok in row:
                if tok in stops:
                    break
                kept.append(tok)
                if stop_at_line and line_complete(self.decode(kept)):
                    break  # what a finished row was padded with afterwards is not the answer
            rows.append(kept)
        return rows


def load_frozen_lm(name: str, *, device: str | torch.device = "cpu", seed: int = 0) -> HFFrozenLM:
    """Registry name / hub id / folder -> :class:`HFFrozenLM` on ``device``."""
    model, tok = load_causal_lm(name, seed=seed)
    return HFFrozenLM(name, model.to(device), tok)  # type: ignore[arg-type]  # transformers types .to oddly
