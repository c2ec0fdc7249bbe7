"""Two processes talking through a trained wire.

    python -m runner encode RUN --text "..." -o msg.lw     # sender: text -> message (format v1)
    python -m runner encode RUN --jsonl texts.jsonl -o out/  # one message per line ({"text": ...})
    python -m runner answer RUN --model gemma3-270m msg.lw [--question "..."]   # receiver

``RUN`` is a run folder (its last verifying checkpoint, or ``--step``) or a folder written by
``PretrainedWire.save_pretrained``. With ``compress = "context"`` the sender encodes the context
and the receiver reads the question in plain text (``--question``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from latentwire_core.jsonio import JSONDepthError, loads


def _load(path: Path, step: int | None, device: str) -> Any:
    from latentwire_hf.pretrained import PretrainedWire

    return PretrainedWire.from_pretrained(path, step=step, device=device)


MAX_MESSAGE_BYTES = 64 * 2**20  # far above any message a wire sends (M <= a few thousand soft tokens)
MAX_TEXT_BYTES = 256 * 2**20  # what encode reads from --jsonl or stdin


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    """At most ``cap`` bytes of a file or of stdin (``-``), refused before more is read."""
    if str(path) == "-":
        raw = sys.stdin.buffer.read(cap + 1)
        where = "stdin"
    else:
        if path.is_file() and path.stat().st_size > cap:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, over the {cap}-byte cap for {what}")
        with path.open("rb") as f:
            raw = f.read(cap + 1)
        where = str(path)
    if len(raw) > cap:
        raise ValueError(f"{where}: over the {cap}-byte cap for {what}")
    return raw


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{where}:{line}: not valid UTF-8 (byte offset {e.start})") from None


def _encode(args: argparse.Namespace) -> int:
    texts: list[str]
    if args.text:
        texts = list(args.text)
        for i, t in enumerate(texts, 1):
            try:
                t.encode("utf-8")
            except UnicodeEncodeError:  # argv bytes that were not UTF-8 arrive as lone surrogates
                raise ValueError(f"--text #{i}: not valid UTF-8") from None
    elif args.jsonl is not None:
        texts = []
        for i, line in enumerate(
            _utf8(_read_capped(args.jsonl, MAX_TEXT_BYTES, "texts"), str(args.jsonl)).splitlines(), 1
        ):
            if not line.strip():
                continue
            try:
                row = loads(line, where=f"{args.jsonl}:{i}")
                texts.append(str(row["text"]) if isinstance(row, dict) else str(row))
            except (JSONDepthError, KeyError) as e:
                raise ValueError(f"{args.jsonl}:{i}: expected a JSON object with a 'text' field ({e})") from e
    else:
        texts = [_utf8(_read_capped(Path("-"), MAX_TEXT_BYTES, "texts"), "stdin")]
    if not texts or not all(t.strip() for t in texts):
        raise ValueError("nothing to encode: give --text, --jsonl or text on stdin (no empty texts)")
    wire = _load(args.run, args.step, args.device)
    messages = wire.encode(texts)
    if len(messages) == 1 and (args.output is None or args.output.suffix):
        if args.output is None:
            sys.stdout.buffer.write(messages[0])
        else:
            args.output.write_bytes(messages[0])
            print(f"{args.output}: {len(messages[0])} bytes", file=sys.stderr)
        return 0
    out = args.output or Path("messages")
    out.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(messages):
        (out / f"{i:06d}.lw").write_bytes(m)
    print(f"{out}: {len(messages)} messages, {sum(map(len, messages))} bytes", file=sys.stderr)
    return 0


def _answer(args: argparse.Namespace) -> int:
    from latentwire_core.prompting import SlotPrompt
    from latentwire_core.tasks import Example
    from latentwire_eval.evaluate import answer_slots
    from latentwire_hf.frozen_lm import load_frozen_lm

    msg = _read_capped(args.message, MAX_MESSAGE_BYTES, "a message")
    wire = _load(args.run, args.step, args.device)
    soft = wire.slot(msg, args.model)  # every check of the message runs before the reader loads
    lm = load_frozen_lm(args.model, device=args.device)
    task = wire.task
    prompt = SlotPrompt(lm, task, compress=wire.spec.compress)
    ex = Example(id="message", task=task.name, source=args.question or "", question=args.question or "")
    if wire.spec.compress == "context" and not args.question:
        raise ValueError("this wire carries the context only: give the question with --question")
    print(answer_slots(prompt, [soft], prompt.tails([ex]))[0])
    return 0


def main(verb: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"python -m runner {verb}", description=__doc__)
    p.add_argument("run", type=Path, help="run folder or saved wire folder")
    p.add_argument("--step", type=int, default=None, help="checkpoint step of a run folder (default: last)")
    p.add_argument("--device", default="cpu")
    if verb == "encode":
        p.add_argument("--text", action="append", help="text to encode (repeatable)")
        p.add_argument("--jsonl", type=Path, default=None, help='file of {"text": ...} lines')
        p.add_argument("-o", "--output", type=Path, default=None, help="message file, or a folder for many")
    else:
        p.add_argument("message", type=Path, help="message file ('-' reads stdin)")
        p.add_argument("--model", required=True, help="the reader that answers")
        p.add_argument("--question", default=None, help="the question, in plain text (compress = 'context')")
    args = p.parse_args(argv)
    if str(args.device).startswith("cuda"):  # before any file is read or model loaded
        import torch

        if not torch.cuda.is_available():
            print(
                f"error: --device {args.device}: this machine has no CUDA device; use --device cpu",
                file=sys.stderr,
            )
            return 2
    from latentwire_core.message import MessageError
    from latentwire_hf.checkpoint import CheckpointError
    from latentwire_hf.pretrained import UnknownReaderError

    try:
        return _encode(args) if verb == "encode" else _answer(args)
    except (MessageError, CheckpointError, UnknownReaderError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
