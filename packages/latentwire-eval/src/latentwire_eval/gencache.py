"""Results of frozen parts for all-token prompts, kept on disk: greedy answers, label scores,
LLMLingua compressions.

A text prompt (``text``, ``no_context``, ``token_budget``, ``llmlingua``) is a list of token ids; a
frozen reader's greedy answer to it depends only on those ids, the reader's weights and the
generation settings. Studies evaluate the same text baselines again and again (4x and 16x,
ablations, seeds), so the answers are kept in one SQLite file per cache root, keyed by a SHA-256
of (reader fingerprint, prompt ids, max_new_tokens, stop rule). The latency stored is the one
measured when the answer was computed, and is reported as such.

The same file keeps two other frozen results under their own keys (:meth:`GenerationCache.record_key`):
a reader's teacher-forced label scores for a classification prompt (the one forward that scores
the gold answer and every label), and LLMLingua's compression of a text toward a budget (keyed by
the scorer's fingerprint and llmlingua's version; its stored seconds are the compression time).

Soft-token prompts (latent, mean-pool) are never cached: their content is a tensor.
Generation is batched, and batch padding can move a float by an ulp; a cached answer was
produced under another batch composition and so may, rarely, differ from a fresh one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

__all__ = ["GenerationCache"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, raw TEXT NOT NULL, latency_s REAL NOT NULL)"
)


class GenerationCache:
    """``(prompt ids) -> (raw answer, latency)`` for one reader identified by ``fingerprint``."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = Path(path), fingerprint
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.execute(_SCHEMA)
        except sqlite3.DatabaseError:  # a damaged file is set aside, not trusted
            self.path.replace(self.path.with_suffix(".corrupt"))
            with self._connect() as db:
                db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def key(self, ids: Sequence[int], *, max_new_tokens: int, stop_at_line: bool) -> str:
        blob = json.dumps([self.fingerprint, list(map(int, ids)), max_new_tokens, stop_at_line, "line-v1"])
        return hashlib.sha256(blob.encode()).hexdigest()

    def record_key(self, kind: str, *parts: object) -> str:
        """Key of a non-generation record (``kind`` names what it is and its format version)."""
        blob = json.dumps([self.fingerprint, kind, *parts])
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, keys: Sequence[str]) -> dict[str, tuple[str, float]]:
        if not keys:
            return {}
        with self._connect() as db:
            marks = ",".join("?" * len(keys))
            rows = db.execute(f"SELECT key, raw, latency_s FROM answers WHERE key IN ({marks})", list(keys))
            return {k: (raw, float(lat)) for k, raw, lat in rows}

    def put(self, items: Sequence[tuple[str, str, float]]) -> None:
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", list(items))
