"""A shipped wire's check: its answers on a small fixed slice, kept in the wire's folder and reproduced.

    python -m runner check-wire wires/sst2-quickstart                      # reproduce check.json
    python -m runner check-wire wires/sst2-quickstart --write SLICE.jsonl --source "..."   # write it

``check.json`` holds the slice itself (each text, its question and its gold answers: no data folder is
needed to verify), the SHA-256 of the weights it was made from, the torch thread count, and per reader
the answers and the task's metrics on the slice, with ``source``: which committed result the slice's
answers come from. Verifying loads the wire and its readers, encodes the texts, answers through every
reader with the same thread count, and names every answer or metric that differs. Reproduction is
exact on one machine with one thread setting; another CPU or thread count may change a greedy answer
on a near-tie (the check then says which).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from latentwire_core.jsonio import read_json

__all__ = ["CHECK_FILE", "verify_check", "write_check"]

CHECK_FILE = "check.json"


def _weights_sha(wire_dir: Path) -> str:
    from latentwire_hf.cache import file_sha256

    return file_sha256(wire_dir / "wire.safetensors")


def _answers(
    wire_dir: Path, items: list[dict[str, Any]], readers: list[str] | None, max_new_tokens: int | None
) -> dict[str, Any]:
    from latentwire_eval.metrics import metric_fns
    from runner.receiver import AnswerRequest, Receiver

    receiver = Receiver(wire_dir, readers=readers)
    receiver.load()
    fns = metric_fns(receiver.task)
    messages = receiver.encode([it["text"] for it in items])
    out: dict[str, Any] = {
        "message_bytes": [len(m) for m in messages],
        "messages_sha256": hashlib.sha256(b"".join(messages)).hexdigest(),
        "readers": {},
    }
    for reader in receiver.reader_names:
        answers = receiver.answer(
            [
                AnswerRequest(m, reader, it.get("question", ""), max_new_tokens)
                for m, it in zip(messages, items, strict=True)
            ]
        )
        scores = {
            name: round(sum(fn(a, it["golds"]) for a, it in zip(answers, items, strict=True)) / len(items), 6)
            for name, fn in fns.items()
        }
        out["readers"][reader] = {"answers": answers, "metrics": scores}
    return out


def write_check(
    wire_dir: Path,
    items: list[dict[str, Any]],
    *,
    source: str,
    readers: list[str] | None = None,
    max_new_tokens: int | None = None,
) -> dict[str, Any]:
    """Answer ``items`` (``text``, ``golds``, optional ``question``) and write ``check.json``
    (``max_new_tokens`` caps a generated answer, keeping a generation wire's check short)."""
    import json

    import torch

    if not items:
        raise ValueError("the slice is empty")
    for i, it in enumerate(items):
        if not isinstance(it.get("text"), str) or not isinstance(it.get("golds"), list):
            raise ValueError(f"slice item {i}: needs 'text' (string) and 'golds' (list of strings)")
    check = {
        "source": source,
        "weights_sha256": _weights_sha(wire_dir),
        "torch_threads": torch.get_num_threads(),
        "max_new_tokens": max_new_tokens,
        "items": items,
        **_answers(wire_dir, items, readers, max_new_tokens),
    }
    tmp = wire_dir / (CHECK_FILE + ".tmp")
    tmp.write_text(json.dumps(check, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(wire_dir / CHECK_FILE)
    return check


def verify_check(wire_dir: Path) -> list[str]:
    """What differs between ``check.json`` and the wire's answers now (empty: reproduced)."""
    import torch

    path = wire_dir / CHECK_FILE
    check = read_json(path)
    if check["weights_sha256"] != _weights_sha(wire_dir):
        return [
            f"{path}: made from other weights than {wire_dir / 'wire.safetensors'}: write it again (--write)"
        ]
    threads = torch.get_num_threads()
    torch.set_num_threads(int(check["torch_threads"]))
    try:
        now = _answers(wire_dir, check["items"], sorted(check["readers"]), check.get("max_new_tokens"))
    finally:
        torch.set_num_threads(threads)
    diffs = []
    if now["message_bytes"] != check["message_bytes"]:
        diffs.append("message sizes differ")
    if now["messages_sha256"] != check["messages_sha256"]:
        diffs.append("the messages' bytes differ")
    for reader, want in check["readers"].items():
        got = now["readers"][reader]
        for i, (a, b) in enumerate(zip(got["answers"], want["answers"], strict=True)):
            if a != b:
                diffs.append(f"{reader} item {i}: answered {a!r}, the check says {b!r}")
        if got["metrics"] != want["metrics"]:
            diffs.append(f"{reader}: metrics {got['metrics']} differ from {want['metrics']}")
    return diffs


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m runner check-wire",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("wire", type=Path, help="a saved wire folder")
    p.add_argument(
        "--write",
        type=Path,
        default=None,
        help="JSONL slice ({'text', 'golds', 'question'}): write check.json",
    )
    p.add_argument(
        "--source", default="", help="with --write: the committed result the slice's answers come from"
    )
    p.add_argument("--max-new-tokens", type=int, default=None, help="with --write: cap on a generated answer")
    args = p.parse_args(argv)
    from latentwire_core.jsonio import loads

    try:
        if args.write is not None:
            if not args.source:
                raise ValueError("--write needs --source: the committed result these answers reproduce")
            lines = args.write.read_text(encoding="utf-8").splitlines()
            items = [
                loads(line, where=f"{args.write}:{i}") for i, line in enumerate(lines, 1) if line.strip()
            ]
            check = write_check(args.wire, items, source=args.source, max_new_tokens=args.max_new_tokens)
            for reader, r in check["readers"].items():
                print(f"{reader}: {r['metrics']} on {len(items)} items")
            return 0
        diffs = verify_check(args.wire)
    except (ValueError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for d in diffs:
        print(d)
    print(f"{args.wire}: {'reproduced' if not diffs else f'{len(diffs)} difference(s)'}")
    return 0 if not diffs else 1
