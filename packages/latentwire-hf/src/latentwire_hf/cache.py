"""Where the project keeps what it computes once (converted readers, features, joined GGUF files)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """Where converted weights and features live: ``$LATENTWIRE_CACHE`` or ``~/.cache/latentwire``."""
    return Path(os.environ.get("LATENTWIRE_CACHE", Path.home() / ".cache" / "latentwire"))
