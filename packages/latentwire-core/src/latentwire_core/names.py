"""Names as file-name parts: a reader or model name made safe to join to a folder."""

from __future__ import annotations

import hashlib
import re

__all__ = ["name_key"]

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def name_key(name: str) -> str:
    """A model name as one safe file-name component: a registry name as it is; a folder path or hub id as
    its safe characters plus a hash of the whole name, so a file named after it stays inside the folder
    it is joined to (``Path("eval") / "/models/x"`` would be ``/models/x``) and two names never share one.
    """
    if _PLAIN.fullmatch(name) and ".." not in name:
        return name
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[-40:]
    return f"{safe or 'model'}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
