"""Tiny name -> factory registries so TOML picks components by short names.

A component is registered once, in the module that defines it (``@CALIBRATIONS.register("rms")``).
Its registry *reads* that module's names without importing it (:meth:`Registry.declare_module`
parses the source for ``register("…")`` calls), so a config is validated (is this a known
encoder?) without torch; ``get`` imports the module. Adding a component is a change in its module.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
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

    def declare_module(self, module: str, variable: str) -> None:
        """Declare every name ``module`` registers with ``@<variable>.register("name")``, read from its
        source (nothing is imported but the parent packages, which load lazily)."""
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"{self.kind} registry: no module {module!r}")
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=spec.origin)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == variable
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                self.declare(node.args[0].value, module)

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
