"""CI check: every model/tokenizer load states ``trust_remote_code=False`` (SECURITY.md).

Walks the Python sources given (default: packages/, apps/, benchmarks/, scripts/) and fails on any
``*.from_pretrained(...)`` call or ``PromptCompressor(...)`` that does not pass
``trust_remote_code=False`` literally (for ``PromptCompressor``: inside ``model_config={...}``).
Exit 1 lists each offending call as ``file:line``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOTS = ("packages", "apps", "benchmarks", "scripts")


# our own classes whose from_pretrained reads only safetensors + JSON (never executes model code)
OWN_LOADERS = {"PretrainedWire"}


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _states_false(call: ast.Call) -> bool:
    return any(k.arg == "trust_remote_code" and _is_false(k.value) for k in call.keywords)


def _model_config_states_false(call: ast.Call) -> bool:
    for k in call.keywords:
        if k.arg == "model_config" and isinstance(k.value, ast.Dict):
            for key, value in zip(k.value.keys, k.value.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_false(value):
                    return True
    return False


def offending_calls(path: Path) -> list[str]:
    """``file:line: what`` for each load that does not refuse remote code explicitly."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        ours = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in OWN_LOADERS
        if name == "from_pretrained" and not ours and not _states_false(node):
            bad.append(f"{path}:{node.lineno}: from_pretrained without trust_remote_code=False")
        if name == "PromptCompressor" and not _model_config_states_false(node):
            bad.append(
                f"{path}:{node.lineno}: PromptCompressor without model_config={{'trust_remote_code': False}}"
            )
    return bad


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path(r) for r in ROOTS]
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*.py")))]
    bad = [line for p in files for line in offending_calls(p)]
    for line in bad:
        print(line)
    print(f"checked {len(files)} files: {len(bad)} load(s) without trust_remote_code=False")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
