"""Modules and parameters held per reader, indexed by the reader's own name.

torch refuses a module or parameter name that contains ``.``, and reader names may (``qwen2.5-coder-0.5b``).
These dicts store such a name with ``_`` for each ``.`` (state key ``adapters.adapters.qwen2_5-coder-0_5b.proj.weight``)
and look every name up through the same mapping, so callers index them by the reader's name as it is
registered. Names without a ``.`` are stored as they are, so wires saved before keep their keys. Two
readers whose names differ only there would share a key and are refused, naming both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import nn

__all__ = ["ReaderModules", "ReaderParameters", "reader_key"]


def reader_key(name: str) -> str:
    """The state-dict key of reader ``name``: its ``.`` as ``_`` (idempotent on a key)."""
    return name.replace(".", "_")


def _check_distinct(names: Iterable[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        key = reader_key(name)
        if key in seen:
            raise ValueError(
                f"readers {seen[key]!r} and {name!r} would share the state-dict key {key!r} "
                "('.' is stored as '_'); rename one of them"
            )
        seen[key] = name


class ReaderModules(nn.ModuleDict):
    """An ``nn.ModuleDict`` keyed by reader name (see the module docstring)."""

    def __init__(self, modules: Mapping[str, nn.Module]) -> None:
        _check_distinct(modules)
        super().__init__({reader_key(n): m for n, m in modules.items()})

    def __getitem__(self, name: str) -> nn.Module:
        return super().__getitem__(reader_key(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(reader_key(name))


class ReaderParameters(nn.ParameterDict):
    """An ``nn.ParameterDict`` keyed by reader name (see the module docstring)."""

    def __init__(self, parameters: Mapping[str, nn.Parameter]) -> None:
        _check_distinct(parameters)
        super().__init__({reader_key(n): p for n, p in parameters.items()})

    def __getitem__(self, name: str) -> nn.Parameter:
        out: nn.Parameter = super().__getitem__(reader_key(name))
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(reader_key(name))
