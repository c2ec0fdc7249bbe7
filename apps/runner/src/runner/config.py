"""The experiment TOML -> frozen attrs configs (the tables are :mod:`runner.sections`). Only the runner reads TOML.

Unknown keys, wrong types, out-of-range values and unknown model names fail before any
work, all of them at once, with a message naming the file and the key (``[train].lr``).
This module imports no torch, transformers or pandas (only the torch-free ``config``
modules of the packages), so a bad file is refused in well under two seconds.
"""

from __future__ import annotations

import tomllib
import typing
import warnings
from pathlib import Path
from typing import Any

import attrs
import cattrs
import cattrs.gen
import tomli_w
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from latentwire_core.config import (
    InterlinguaConfig,
)
from latentwire_core.registry import UnknownNameError
from latentwire_eval.methods import METHODS
from latentwire_hf.config import PretrainConfig, TrainConfig, resolve_model_name
from runner.sections import (
    LEGACY_WIRE_KEYS,
    ConfigError,
    Experiment,
    FeaturesConfig,
    ModelsConfig,
    WireSection,
    legacy_wire_key,
    migrate_wire,
    wire_key_now,
)

__all__ = [
    "LEGACY_WIRE_KEYS",
    "METHODS",
    "STAGES",
    "ConfigError",
    "Experiment",
    "WireSection",
    "load_experiment",
    "migrate_wire",
    "to_dict",
    "to_toml",
]

STAGES = ("prepare", "pretrain", "train", "control", "evaluate", "report")


# --- TOML -> configs, by cattrs ----------------------------------------------------------------------
# Strict primitive hooks (TOML already typed its values: 1.5 is no integer, "5" no number), unknown
# keys refused, each field's attrs validator run as the field is structured, so cattrs' detailed
# validation gathers every problem of every table before anything is built; _messages then names
# each by its TOML key.


class _WrongType(TypeError):
    def __init__(self, expected: str, value: Any, index: int | None = None) -> None:
        super().__init__(expected)
        self.expected, self.value, self.index = expected, value, index


class _Invalid(ValueError):
    """A field's own validator refused its value (the message names the field)."""


def _strict(
    expected: str, ok: typing.Callable[[Any], bool], cast: typing.Callable[[Any], Any] = lambda v: v
) -> Any:
    def hook(value: Any, _t: Any) -> Any:
        if not ok(value):
            raise _WrongType(expected, value)
        return cast(value)

    return hook


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    number = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    conv.register_structure_hook(bool, _strict("true or false", lambda v: isinstance(v, bool)))
    conv.register_structure_hook(int, _strict("an integer", lambda v: number(v) and isinstance(v, int)))
    conv.register_structure_hook(float, _strict("a number", number, float))
    conv.register_structure_hook(str, _strict("a string", lambda v: isinstance(v, str)))

    def is_tuple(t: Any) -> bool:
        return typing.get_origin(t) is tuple

    def tuple_hook(value: Any, t: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise _WrongType("a list", value)
        (item,) = typing.get_args(t)[:1]
        out = []
        for i, v in enumerate(value):
            try:
                out.append(conv.structure(v, item))
            except _WrongType as e:
                raise _WrongType(e.expected, e.value, index=i) from None
        return tuple(out)

    conv.register_structure_hook_func(is_tuple, tuple_hook)

    def attrs_hook(cls: type[Any]) -> Any:
        overrides: dict[str, Any] = {}
        for f in attrs.fields(cls):
            if f.validator is None or attrs.has(f.type):
                continue

            def checked(value: Any, t: Any, f: Any = f) -> Any:
                out = conv.structure(value, t)
                if callable(f.converter):  # a renamed value (an encoder kind) is read as its new name
                    out = f.converter(out)
                try:
                    f.validator(None, f, out)
                except (ValueError, TypeError) as e:
                    raise _Invalid(str(e)) from None
                return out

            overrides[f.name] = cattrs.gen.override(struct_hook=checked)
        build = cattrs.gen.make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **overrides)

        def hook(value: Any, t: Any) -> Any:
            if not isinstance(value, dict):
                raise _WrongType("a table", value)
            return build(value, t)

        return hook

    conv.register_structure_hook_factory(attrs.has, attrs_hook)
    return conv


_CONVERTER = _converter()


# fields of the nested library configs that the runner sets itself (refused in load_experiment)
# (table, its config class, key, why): refused in the file, left out of the "allowed here" lists
_NOT_SETTABLE: tuple[tuple[tuple[str, ...], type, str, str], ...] = (
    (("wire", "encoder"), InterlinguaConfig, "d_in", "it is the [features] source's width"),
    (("train",), TrainConfig, "seed", "the top-level 'seed' seeds everything"),
    (("pretrain",), PretrainConfig, "seed", "the top-level 'seed' seeds everything"),
)


def _messages(exc: BaseException, path: tuple[str, ...]) -> list[str]:
    """Every problem in a cattrs error tree, each naming its TOML key."""

    def section(p: tuple[str, ...]) -> str:
        return f"[{'.'.join(p)}]" if p else "[top level]"

    key = ".".join(path)
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        out = [m for e, note in with_notes for m in _messages(e, (*path, note.name))]
        return out + [m for e in without for m in _messages(e, path)]
    if isinstance(exc, ForbiddenExtraKeysError):
        hidden = {key for _, cl, key, _ in _NOT_SETTABLE if cl is exc.cl}
        allowed = ", ".join(sorted(f.name for f in attrs.fields(exc.cl) if f.name not in hidden))
        where = f"{key}." if key else ""
        return [f"unknown key '{where}{k}'; allowed here: {allowed}" for k in sorted(exc.extra_fields)]
    if isinstance(exc, _WrongType):
        if exc.expected == "a table":
            return [f"{section(path)} must be a table, got {exc.value!r}"]
        at = f"[{exc.index}]" if exc.index is not None else ""
        return [f"'{key}{at}' must be {exc.expected}, got {exc.value!r}"]
    if isinstance(exc, _Invalid):
        return [f"{section(path[:-1])} {exc}"]
    if isinstance(exc, ValueError | TypeError):  # a table's cross-field rule
        return [f"{section(path)} {exc}"]
    raise exc


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare string


def load_experiment(path: Path, overrides: typing.Sequence[str] = ()) -> Experiment:
    """Read ``path`` and apply ``--set key=value`` overrides (``train.lr=3e-4``)."""
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); is it a TOML file?") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None
    try:
        data, moved = migrate_wire(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
        node = data
        parts = key.strip().split(".")
        value = _parse_value(raw.strip())
        if (
            len(parts) >= 2
            and parts[0] == "wire"
            and legacy_wire_key(parts[1], value if len(parts) == 2 else {})
        ):
            now = ["wire", *wire_key_now(parts[1]), *parts[2:]]
            moved.append(f"--set {'.'.join(parts)} -> {'.'.join(now)}")
            parts = now
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {p} is not a table")
        node[parts[-1]] = value
    if moved:
        warnings.warn(
            f"{path}: the flat [wire] layout is read as today's nested one ({'; '.join(moved)}); "
            "the run folder's experiment.toml is written nested",
            FutureWarning,
            stacklevel=2,
        )
    errors: list[str] = []
    for table, _, key, why in _NOT_SETTABLE:
        where: Any = data
        for part in table:
            where = where.get(part) if isinstance(where, dict) else None
        if isinstance(where, dict) and key in where:
            errors.append(f"'[{'.'.join(table)}].{key}' is not settable; {why}")
            del where[key]  # so the other problems are reported too
    if "name" not in data:
        errors.append("missing required key 'name'")
        data = {**data, "name": "unnamed"}  # so the other problems are reported too
    exp: Experiment | None = None
    try:
        exp = _CONVERTER.structure(data, Experiment)
    except (ClassValidationError, ForbiddenExtraKeysError, _WrongType, ValueError, TypeError) as e:
        errors += _messages(e, ())
    models = data.get("models", {}) if isinstance(data.get("models"), dict) else {}
    features = data.get("features", {}) if isinstance(data.get("features"), dict) else {}
    names = models.get("names", ModelsConfig().names)
    named = [
        (f"[models].names[{i}]", n) for i, n in enumerate(names if isinstance(names, list | tuple) else [])
    ]
    ev = data.get("eval", {}) if isinstance(data.get("eval"), dict) else {}
    scorer = [(f"[eval].{k}", ev[k]) for k in ("llmlingua_scorer", "lm_coder") if k in ev]
    for key, name in [
        *named,
        ("[features].source", features.get("source", FeaturesConfig().source)),
        *scorer,
    ]:
        if isinstance(name, str):
            try:
                resolve_model_name(name)
            except UnknownNameError as e:
                errors.append(f"{key}: {e}")
    for key, name in scorer:  # read at evaluation, after training: its folder is checked now
        if isinstance(name, str) and Path(name).is_dir():
            problem = _scorer_folder_problem(Path(name))
            if problem:
                errors.append(f"{key}: {problem}")
    if exp is not None:
        from runner.limits import bound_errors, memory_error

        errors += bound_errors(exp)
        mem = memory_error(exp) if not errors else None
        if mem:
            errors.append(mem)
    if errors:
        raise ConfigError(f"{path}: " + f"; {path}: ".join(errors))
    assert isinstance(exp, Experiment)
    return exp


def _scorer_folder_problem(folder: Path) -> str | None:
    """Why a local folder cannot be the LLMLingua scorer (a plain causal LM folder), or None."""
    from latentwire_core.jsonio import JSONDepthError, read_json

    cfg = folder / "config.json"
    if not cfg.is_file():
        return f"{folder} has no config.json: not a model folder"
    try:
        data = read_json(cfg, max_bytes=4 * 2**20)
    except (OSError, JSONDepthError) as e:
        return f"{cfg} is unreadable ({e})"
    if not isinstance(data, dict):
        return f"{cfg} is not a JSON object"
    if "auto_map" in data:
        return f"{folder} names its own code (auto_map in config.json); LatentWire never runs a model's code"
    return None


def to_dict(obj: Any) -> Any:
    return attrs.asdict(obj, recurse=True)


def to_toml(exp: Experiment) -> str:
    """The resolved config as TOML (what ran, defaults included)."""
    d = to_dict(exp)
    d["train"].pop("seed", None)  # derived from the top-level seed
    d["wire"]["encoder"].pop("d_in", None)  # the [features] width, set when the wire is built
    d["pretrain"].pop("seed", None)
    return "# resolved experiment: exactly what ran\n" + tomli_w.dumps(d)
