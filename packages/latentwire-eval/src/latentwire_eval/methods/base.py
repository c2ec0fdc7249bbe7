"""Evaluation methods' base: one registry, one small class per method (docs/design.md "Correctness rules").

Every method answers through the same prompt builder; they differ only in what fills the
prompt's slot for a batch of examples (text ids or soft tokens) and in what crosses the wire.
A method is a :class:`Method` subclass registered under its TOML name::

    @register_method("first_sentence")
    class FirstSentence(TokenMethod):
        \"\"\"The compressed text's first sentence, cut to the example's budget M_i.\"\"\"

        def ids(self, e: Example) -> list[int]:
            first = self.ctx.text(e).split(". ")[0]
            return list(self.lm.tokenize([first])[0])[: self.ctx.budgets[e.id]]

``[eval].methods`` is validated against this registry (names, task kinds, the methods a method
needs beside it, the readers it needs), and the runner's evaluate stage is a loop over it.

Three scopes: ``reader`` methods fill one reader's slot (most); a ``reference`` method answers
without a reader (``linear_probe``); a ``combined`` method derives its rows from the other
methods' rows after every reader has run (``joint``, ``oracle``).

This module loads without torch (it is imported to validate a TOML file); methods import what
they compute with when they run.

The methods themselves live beside this module, one module per family, each with the helpers only
it uses: :mod:`.text` (text, k-shot, no context, token budget), :mod:`.llmlingua`, :mod:`.latent`
(the wire, its controls and the soft-prompt control), :mod:`.numeric` (mean pool, PCA through the
codec), :mod:`.reference` (the linear probe) and :mod:`.combined` (joint, oracle).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from latentwire_core.registry import Registry
from latentwire_core.tasks import Example, TaskSpec, compressed_text

if TYPE_CHECKING:
    import pandas as pd

    from latentwire_core.codec import QuantWireCodec
    from latentwire_core.ports import FeatureSource, FrozenLM
    from latentwire_core.prompting import SlotPrompt
    from latentwire_core.slots import Segment
    from latentwire_core.soft_prompt import SoftPromptControl
    from latentwire_core.wire import LatentWire

__all__ = [
    "ALL_READERS",
    "METHODS",
    "NO_READER",
    "EvalContext",
    "Method",
    "Slots",
    "TokenMethod",
    "check_methods",
    "derangement",
    "register_method",
]

METHODS: Registry[type[Method]] = Registry("evaluation method")

ALL_READERS = "all readers"
"""The ``model`` value of a combined method's rows (``joint``, ``oracle``: they draw on every reader)."""
NO_READER = "no reader"
"""The ``model`` value of a reference method's rows (``linear_probe``: no LLM answers)."""


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Register a :class:`Method` subclass under its TOML name (the class's ``name``)."""

    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name)(cls)

    return deco


Slots = tuple[list["Segment"], list[int]]
"""Slot contents of a batch and the wire bytes of each example (0 when nothing is sent)."""


def derangement(examples: Sequence[Example], seed: int) -> dict[str, Example]:
    """``latent_shuffled``'s partner of each example: a fixed cycle through a seeded permutation."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return {examples[order[i]].id: examples[order[(i + 1) % len(order)]] for i in range(len(order))}


@attrs.define(kw_only=True)
class EvalContext:
    """What methods may use; built once per evaluation by the runner (or a benchmark).

    Args:
        task: the task spec.
        train: the training split, the only data a method may fit on.
        budgets: ``M_i`` per evaluation example id: the latent's soft tokens, every method's budget.
        compress: ``source`` or ``context`` (what goes in the slot; a QA question stays in text).
        max_text_tokens: cap on a text slot.
        device: where slot tensors go.
        codec: the wire codec (latent, mean_pool and pca send their numbers through it).
        features: the encoder's frozen feature source (latent methods).
        wire: the trained wire, weights loaded (latent methods).
        fingerprint: the encoder fingerprint every message carries.
        partner: whose latent each example receives under ``latent_shuffled``.
        control: the trained soft-prompt control (``text_soft_prompt``).
        resolve_model: a model name or folder -> a local model folder (``llmlingua``'s scorer).
        cache_path: an SQLite file where frozen results (LLMLingua's compressions) are kept across
            runs (:mod:`.gencache`); ``None``: nothing is kept.
        options: method settings from ``[eval]`` (``kshot``, ``pca_rank``, ``pca_fit_examples``,
            ``llmlingua_scorer``) and the wire's ``n_tokens``, ``ratio`` and ``d_z``.
    """

    task: TaskSpec
    train: Sequence[Example]
    budgets: Mapping[str, int]
    compress: str = "source"
    max_text_tokens: int = 512
    seed: int = 0
    device: str = "cpu"
    codec: QuantWireCodec | None = None
    features: FeatureSource | None = None
    wire: LatentWire | None = None
    fingerprint: bytes = b""
    partner: Mapping[str, Example] = attrs.field(factory=dict)
    control: SoftPromptControl | None = None
    resolve_model: Callable[[str], Path] | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)
    cache_path: Path | None = None
    _prompts: dict[str, SlotPrompt] = attrs.field(factory=dict, init=False)
    _shared: dict[str, Any] = attrs.field(factory=dict, init=False)

    def feature_source(self, method: str) -> FeatureSource:
        """The wire's feature source, which ``method`` reads with (a clear error where none was given)."""
        if self.features is None:
            raise ValueError(f"{method} needs the wire's feature source (EvalContext.features)")
        return self.features

    def plain_prompt(self, name: str, lm: FrozenLM) -> SlotPrompt:
        """The reader's task prompt, built once per reader (its prefix cache is a forward pass)."""
        if name not in self._prompts:
            from latentwire_core.prompting import SlotPrompt

            self._prompts[name] = SlotPrompt(lm, self.task, compress=self.compress)
        return self._prompts[name]

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        """One object for every reader (a loaded scorer, a fitted model), built on first use."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]

    def text(self, e: Example) -> str:
        """The part of ``e`` that is compressed (the whole source, or a QA example's context)."""
        return compressed_text(e, self.compress)


class Method(ABC):
    """One evaluation method for one reader. Subclasses set what fills the slot.

    Class attributes read by the config validator and the runner:

    * ``scope``: ``reader`` (per reader), ``reference`` (no reader: :meth:`reference_rows`)
      or ``combined`` (derived from other methods' rows: :meth:`combine`).
    * ``task_kinds``: the task kinds it applies to.
    * ``requires``: methods that must be evaluated beside it.
    * ``min_readers``: readers it needs.
    * ``uses``: run parts it needs loaded: ``"wire"`` (a trained checkpoint), ``"control"``.
    * ``confidence_of``: (combined methods) the method whose answers need their own NLL scored.
    * ``fits_on_train``: it learns from the training split (demonstrations, a PCA basis, a probe,
      the trained control), so it cannot score a transfer evaluation (another task's examples).
    """

    name: ClassVar[str] = ""
    scope: ClassVar[str] = "reader"
    task_kinds: ClassVar[tuple[str, ...]] = ("classification", "qa")
    # the generation methods that apply to every kind (GSM8K's math, XSum's summaries) say so
    ALL_KINDS: ClassVar[tuple[str, ...]] = ("classification", "qa", "math", "summary")
    requires: ClassVar[tuple[str, ...]] = ()
    min_readers: ClassVar[int] = 1
    uses: ClassVar[frozenset[str]] = frozenset()
    confidence_of: ClassVar[str | None] = None
    fits_on_train: ClassVar[bool] = False

    def __init__(self, ctx: EvalContext, reader: str, lm: FrozenLM) -> None:
        self.ctx, self.reader, self.lm = ctx, reader, lm

    @property
    def prompt(self) -> SlotPrompt:
        """The prompt this method's slot goes into (the reader's task prompt)."""
        return self.ctx.plain_prompt(self.reader, self.lm)

    def fit(self) -> None:
        """Fit on ``ctx.train`` only (PCA, scorers); called once before :meth:`slots`."""
        return None  # most methods have nothing to fit

    @abstractmethod
    def slots(self, examples: Sequence[Example]) -> Slots:
        """The slot content of each example and its wire bytes."""

    def read(self, e: Example) -> str:
        """What the method read of ``e``'s compressed text (after any truncation)."""
        return self.lm_text(self.text_ids(e))

    def replayed_seconds(self) -> float:
        """Compute time of slot contents served from a disk cache since the last call (it is
        added to the rows' latency, as measured when computed)."""
        return 0.0

    # helpers shared by methods
    def text_ids(self, e: Example) -> list[int]:
        """The compressed text's reader tokens, cut to ``max_text_tokens``."""
        return self.prompt.text_ids(e)[: self.ctx.max_text_tokens]

    def lm_text(self, ids: Sequence[int]) -> str:
        return str(self.lm.decode(list(ids)))

    @classmethod
    def reference_rows(cls, ctx: EvalContext, evaluation: Sequence[Example]) -> pd.DataFrame:
        """(``reference`` scope) rows answered without a reader."""
        raise TypeError(f"{cls.name} has scope {cls.scope!r}: it answers through a reader, not alone")

    @classmethod
    def combine(cls, preds: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
        """(``combined`` scope) rows derived from the other methods' rows."""
        raise TypeError(f"{cls.name} has scope {cls.scope!r}: it does not combine other methods' rows")


class TokenMethod(Method):
    """A method whose slot is reader token ids (nothing crosses the wire)."""

    @abstractmethod
    def ids(self, e: Example) -> list[int]:
        """The reader token ids that fill ``e``'s slot."""

    def slots(self, examples: Sequence[Example]) -> Slots:
        return [self.ids(e) for e in examples], [0] * len(examples)

    def read(self, e: Example) -> str:
        return self.lm_text(self.ids(e))


def check_methods(
    methods: Sequence[str], *, task_kind: str, n_readers: int, transfer: bool = False
) -> list[str]:
    """Problems with ``[eval].methods`` for a task kind and reader count (empty: fine); ``transfer``:
    the examples are another task's than the training split's (``[eval].task``)."""
    errors = []
    for m in methods:
        if m not in METHODS:
            errors.append(f"unknown method {m!r}; known: {', '.join(METHODS.names())}")
            continue
        cls = METHODS.get(m)
        if task_kind not in cls.task_kinds:
            errors.append(f"{m} needs a {' or '.join(cls.task_kinds)} task, not a {task_kind} one")
        missing = [r for r in cls.requires if r not in methods]
        if missing:
            errors.append(f"{m} needs {', '.join(missing)} evaluated beside it; list it too")
        if n_readers < cls.min_readers:
            errors.append(f"{m} needs at least {cls.min_readers} models, got {n_readers}")
        if transfer and cls.fits_on_train:
            errors.append(
                f"{m} learns from the training split, which is another task's in a transfer evaluation"
            )
    return errors
