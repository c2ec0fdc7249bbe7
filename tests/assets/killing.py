"""A kill between two checkpoints, for the resume tests: ``Trainer.train`` runs some steps, then raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from latentwire_hf.training import Trainer


class Killed(BaseException):
    """A kill between two checkpoints (BaseException: nothing on the way catches it)."""


@contextmanager
def killed_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> Iterator[None]:
    """Within the block, training stops after ``steps`` steps with :class:`Killed` (which the block expects)."""
    train = Trainer.train

    def killed(self: Trainer, *, stop_after: int | None = None) -> object:
        train(self, stop_after=steps)
        raise Killed

    monkeypatch.setattr(Trainer, "train", killed)
    try:
        with pytest.raises(Killed):
            yield
    finally:
        monkeypatch.setattr(Trainer, "train", train)
