"""A wire with its readers loaded, answering and encoding lists: what the service's batches call.

Kept apart from HTTP so that the same object answers offline (``answer_offline``) and in the service,
and a test can compare the two message by message.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import attrs

from latentwire_core.logs import get_logger

__all__ = ["AnswerRequest", "Receiver"]

log = get_logger(__name__)


@attrs.frozen
class AnswerRequest:
    """One message to answer: its bytes, the reader, the plain-text question (``compress = "context"``)."""

    message: bytes
    reader: str
    question: str = ""
    max_new_tokens: int | None = None


class Receiver:
    """A trained wire (``PretrainedWire``) and the frozen readers that answer its messages.

    Args:
        path: a saved wire folder or a run folder.
        readers: the readers to load (default: all of the wire's).
        device: torch device.
        max_new_tokens: the most tokens a request may ask a reader to generate (default: the task's limit).
    """

    def __init__(
        self,
        path: Path,
        *,
        readers: Sequence[str] | None = None,
        device: str = "cpu",
        max_new_tokens: int | None = None,
    ) -> None:
        from latentwire_hf.pretrained import PretrainedWire, UnknownReaderError

        self.path, self.device = Path(path), device
        self.wire = PretrainedWire.from_pretrained(self.path, device=device)
        wanted = list(readers) if readers else self.wire.readers
        unknown = [r for r in wanted if r not in self.wire.readers]
        if unknown:
            raise UnknownReaderError(
                f"this wire has no adapter for {', '.join(map(repr, unknown))}; its readers: "
                f"{', '.join(self.wire.readers)}"
            )
        self.reader_names = wanted
        self.task = self.wire.task
        self.max_new_tokens = int(max_new_tokens or self.task.max_new_tokens)
        self.prompts: dict[str, Any] = {}
        self.ready = False

    @property
    def compress(self) -> str:
        return str(self.wire.spec.compress)

    @property
    def fingerprint(self) -> str:
        return self.wire.fingerprint.hex()

    def load(self) -> None:
        """Load the feature source and every reader (minutes on a CPU for large readers)."""
        from latentwire_core.prompting import SlotPrompt
        from latentwire_hf.frozen_lm import load_frozen_lm

        self.wire.features()
        for name in self.reader_names:
            lm = load_frozen_lm(name, device=self.device)
            self.prompts[name] = SlotPrompt(lm, self.task, compress=self.compress)
            log.info("reader_loaded", reader=name)
        self.ready = True

    def check(self, req: AnswerRequest) -> None:
        """Every check of the message and the request, before it waits in a queue (raises by name)."""
        from latentwire_hf.pretrained import UnknownReaderError

        if req.reader not in self.reader_names:
            raise UnknownReaderError(
                f"this service has no reader {req.reader!r}; its readers: {', '.join(self.reader_names)}"
            )
        if self.compress == "context" and not req.question.strip():
            raise ValueError("this wire carries the context only: the request needs a question")
        if req.max_new_tokens is not None and not 1 <= req.max_new_tokens <= self.max_new_tokens:
            raise ValueError(f"max_new_tokens must be in 1..{self.max_new_tokens}, got {req.max_new_tokens}")
        self.wire._received(req.message, req.reader)  # length, magic, CRC, fingerprint, d_z, M, finite

    @staticmethod
    def batch_key(req: AnswerRequest) -> Hashable:
        return ("answer", req.reader, req.max_new_tokens)

    def answer(self, reqs: Sequence[AnswerRequest]) -> list[str]:
        """Answers for requests of one reader and one generation limit, in one batch."""
        from latentwire_core.tasks import Example
        from latentwire_eval.evaluate import answer_slots

        if not reqs:
            return []
        reader = reqs[0].reader
        if any(r.reader != reader or r.max_new_tokens != reqs[0].max_new_tokens for r in reqs):
            raise ValueError("one batch holds one reader and one generation limit")
        prompt = self.prompts[reader]
        slots = [self.wire.slot(r.message, reader) for r in reqs]
        examples = [
            Example(id=f"request-{i}", task=self.task.name, source=r.question, question=r.question)
            for i, r in enumerate(reqs)
        ]
        limit = reqs[0].max_new_tokens or self.max_new_tokens
        return answer_slots(prompt, slots, prompt.tails(examples), max_new_tokens=limit)

    def encode(self, texts: Sequence[str]) -> list[bytes]:
        return self.wire.encode(list(texts))

    def run_batch(self, key: Hashable, payloads: Sequence[Any]) -> Sequence[Any]:
        """The batcher's worker: ``("encode",)`` batches texts, ``("answer", ...)`` batches requests."""
        if key == ("encode",):
            return self.encode(payloads)
        return self.answer(payloads)
