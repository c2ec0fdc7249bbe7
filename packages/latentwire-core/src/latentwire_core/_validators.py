"""attrs validators shared by core configs."""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["non_negative", "one_of", "positive", "registered"]


def _finite(attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


def positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    _finite(attribute, value)
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    _finite(attribute, value)
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def one_of(*choices: str) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {list(choices)}, got {value!r}")

    return check


def registered(registry: Any) -> Any:
    """A name its registry knows (the allowed names are the registry's, never a copied list)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in registry:
            raise ValueError(f"{attribute.name} must be one of {registry.names()}, got {value!r}")

    return check
