"""Tiny name -> factory registries so TOML picks components by short names.

A name can be *declared* with the module that registers it, so a config can be validated
(is this a known encoder?) without importing the module (and torch); ``get`` imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(KeyError):
    """A registry name that does not resolve; the message lists the names that do."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps short names (``"perceiver"``) to factories.

    Args:
        kind: what the registry holds, used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name -> module that registers it on import

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def declare(self, name: str, module: str) -> None:
        """Make ``name`` known now; ``module`` registers it and is imported on first :meth:`get`."""
        self._declared.setdefault(name, module)

    def get(self, name: str) -> T:
        if name not in self._items and name in self._declared:
            importlib.import_module(self._declared[name])
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._declared))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._declared
