"""Cut files into pieces small enough for one transfer, and put them back together, checked by SHA-256.

    python scripts/device/pieces.py split FILE... --out DIR [--max-mib 60]   # writes DIR/manifest.json
    python scripts/device/pieces.py join DIR --dest DEST                      # verifies every piece, then each file

``manifest.json`` lists, per file, its size and SHA-256 and its pieces (name, size, SHA-256) in order.
``join`` refuses a missing or changed piece, naming it, and a reassembled file whose digest is not the
manifest's; it writes each file under a temporary name and renames it, so a failed join leaves nothing
that looks finished. Standard library only (it runs before anything is installed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

MANIFEST = "manifest.json"
BLOCK = 1 << 22


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def split(files: list[Path], out: Path, *, max_bytes: int) -> dict:
    """Cut each file into pieces of at most ``max_bytes``; return (and write) the manifest."""
    if max_bytes < 1:
        raise ValueError(f"max piece size must be >= 1 byte, got {max_bytes}")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"max_bytes": max_bytes, "files": []}
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file to split")
        pieces = []
        with path.open("rb") as f:
            for i, data in enumerate(iter(lambda: f.read(max_bytes), b"")):
                name = f"{path.name}.part{i:03d}"
                (out / name).write_bytes(data)
                pieces.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        manifest["files"].append(
            {"name": path.name, "size": path.stat().st_size, "sha256": _sha256(path), "pieces": pieces}
        )
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _plain_name(name: object, where: Path) -> str:
    """A manifest's file or piece name: one path component, never ``..`` or a folder (so a join writes
    and reads inside its own folders only)."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
    ):
        raise ValueError(f"{where}: {name!r} is not a plain file name")
    return name


def _read_manifest(path: Path) -> dict:
    """The manifest, checked for shape before anything is read or written; faults name the file."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{path}: not a readable manifest ({e})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        raise ValueError(f"{path}: has no list of files")
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("pieces"), list):
            raise ValueError(f"{path}: a file entry without its pieces")
        _plain_name(entry.get("name"), path)
        if not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            raise ValueError(f"{path}: {entry.get('name')!r} lacks its size or SHA-256")
        for piece in entry["pieces"]:
            if not isinstance(piece, dict):
                raise ValueError(f"{path}: a malformed piece of {entry['name']!r}")
            _plain_name(piece.get("name"), path)
    return manifest


def join(src: Path, dest: Path) -> list[Path]:
    """Verify every piece in ``src`` against its manifest, reassemble each file into ``dest``."""
    manifest = _read_manifest(src / MANIFEST)
    problems = []
    for entry in manifest["files"]:
        for piece in entry["pieces"]:
            p = src / piece["name"]
            if not p.is_file():
                problems.append(f"{p}: missing")
            elif p.stat().st_size != piece["size"] or _sha256(p) != piece["sha256"]:
                problems.append(f"{p}: size or SHA-256 differs from {MANIFEST}")
    if problems:
        raise ValueError("pieces do not match their manifest: " + "; ".join(problems))
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in manifest["files"]:
        target = dest / entry["name"]
        if target.is_file() and target.stat().st_size == entry["size"] and _sha256(target) == entry["sha256"]:
            written.append(target)  # already there and whole
            continue
        tmp = target.with_name(target.name + ".partial")
        with tmp.open("wb") as f:
            for piece in entry["pieces"]:
                f.write((src / piece["name"]).read_bytes())
        if _sha256(tmp) != entry["sha256"]:
            tmp.unlink()
            raise ValueError(f"{target}: the reassembled file's SHA-256 differs from {MANIFEST}")
        tmp.replace(target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("split")
    s.add_argument("files", nargs="+", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--max-mib", type=float, default=60.0)
    j = sub.add_parser("join")
    j.add_argument("src", type=Path)
    j.add_argument("--dest", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.verb == "split":
            m = split(args.files, args.out, max_bytes=int(args.max_mib * 2**20))
            for e in m["files"]:
                print(f"{e['name']}: {e['size']} bytes in {len(e['pieces'])} pieces, sha256 {e['sha256']}")
        else:
            for path in join(args.src, args.dest):
                print(f"verified {path}")
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
