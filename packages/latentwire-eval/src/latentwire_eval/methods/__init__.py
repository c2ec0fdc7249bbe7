"""Evaluation methods: one registry (:mod:`.base`), one small class per method, one module per family.

Importing this package registers every shipped method; it loads without torch (a TOML file is validated
against the registry), since each method imports what it computes with when it runs.
"""

from __future__ import annotations

from latentwire_eval.methods import combined, latent, llmlingua, lmcoded, numeric, reference, text
from latentwire_eval.methods.base import (
    ALL_READERS,
    METHODS,
    NO_READER,
    EvalContext,
    Method,
    Slots,
    TokenMethod,
    check_methods,
    derangement,
    register_method,
)

__all__ = [
    "ALL_READERS",
    "METHODS",
    "NO_READER",
    "EvalContext",
    "Method",
    "Slots",
    "TokenMethod",
    "check_methods",
    "combined",
    "derangement",
    "latent",
    "llmlingua",
    "lmcoded",
    "numeric",
    "reference",
    "register_method",
    "text",
]
