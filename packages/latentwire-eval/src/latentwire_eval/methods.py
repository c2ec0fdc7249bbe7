"""Evaluation methods: one registry, one small class per method (docs/design.md "Correctness rules").

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
    import torch

    from latentwire_core.codec import QuantWireCodec
    from latentwire_core.ports import FrozenLM
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
    features: Any = None
    wire: LatentWire | None = None
    fingerprint: bytes = b""
    partner: Mapping[str, Example] = attrs.field(factory=dict)
    control: SoftPromptControl | None = None
    resolve_model: Callable[[str], Path] | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)
    cache_path: Path | None = None
    _prompts: dict[str, SlotPrompt] = attrs.field(factory=dict, init=False)
    _shared: dict[str, Any] = attrs.field(factory=dict, init=False)

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


# --- text -------------------------------------------------------------------------------------------
@register_method("text")
class Text(TokenMethod):
    """The whole compressed text (up to ``max_text_tokens``): the upper reference."""

    task_kinds = Method.ALL_KINDS

    def ids(self, e: Example) -> list[int]:
        return self.text_ids(e)


@register_method("text_kshot")
class TextKShot(Text):
    """The whole text after ``kshot`` demonstrations drawn from the training split."""

    fits_on_train = True

    def fit(self) -> None:
        from latentwire_core.prompting import SlotPrompt
        from latentwire_eval.baselines import kshot_instruction

        instr = kshot_instruction(
            self.ctx.task,
            self.ctx.train,
            k=int(self.ctx.options.get("kshot", 4)),
            seed=self.ctx.seed,
            compress=self.ctx.compress,
        )
        self._prompt = SlotPrompt(self.lm, self.ctx.task, instruction=instr, compress=self.ctx.compress)

    @property
    def prompt(self) -> SlotPrompt:
        return getattr(self, "_prompt", None) or self.ctx.plain_prompt(self.reader, self.lm)


@register_method("no_context")
class NoContext(TokenMethod):
    """Nothing of the compressed part: the question alone. A latent that does not beat it carries nothing."""

    task_kinds = Method.ALL_KINDS

    def ids(self, e: Example) -> list[int]:
        if self.ctx.compress == "context" or not e.question:
            return []  # compress = "context": the question is already in the prompt's plain tail
        return list(self.lm.tokenize([f"Question: {e.question}"])[0])

    def read(self, e: Example) -> str:
        return ""


@register_method("token_budget")
class TokenBudget(TokenMethod):
    """The text truncated to the example's budget ``M_i`` reader tokens (question first)."""

    task_kinds = Method.ALL_KINDS

    def ids(self, e: Example) -> list[int]:
        if self.ctx.compress == "context":
            return self.text_ids(e)[: self.ctx.budgets[e.id]]
        from latentwire_eval.evaluate import token_budget_slot

        return token_budget_slot(self.lm, e, self.ctx.budgets[e.id])


@register_method("llmlingua")
class LLMLingua(TokenMethod):
    """LLMLingua (perplexity mode, ``llmlingua_scorer`` as local scorer) toward ``M_i`` reader tokens."""

    task_kinds = Method.ALL_KINDS

    def fit(self) -> None:
        def build() -> Any:
            from latentwire_eval.baselines import LLMLinguaBaseline

            name = str(self.ctx.options.get("llmlingua_scorer", "smollm2-135m"))
            folder = self.ctx.resolve_model(name) if self.ctx.resolve_model else Path(name)
            cache = Path(str(self.ctx.options.get("tiktoken_cache", folder.parent / "tiktoken")))
            return LLMLinguaBaseline(
                folder, tiktoken_cache=cache, device=self.ctx.device, store_path=self.ctx.cache_path
            )

        self.lingua = self.ctx.shared("llmlingua", build)  # compressed texts are shared by readers

    def replayed_seconds(self) -> float:
        seconds, self.lingua.replayed_seconds = self.lingua.replayed_seconds, 0.0
        return float(seconds)

    def ids(self, e: Example) -> list[int]:
        if self.ctx.compress == "context":
            return list(self.lingua.context_slot(self.lm, e.context, self.ctx.budgets[e.id]))
        return list(self.lingua.slot(self.lm, e, self.ctx.budgets[e.id]))


@register_method("text_soft_prompt")
class TextSoftPrompt(Method):
    """The equal-training control: a learned soft prompt before the whole text."""

    fits_on_train = True
    uses = frozenset({"control"})

    def slots(self, examples: Sequence[Example]) -> Slots:
        import torch

        from latentwire_core.soft_prompt import SoftPromptControl

        control = self.ctx.control
        if control is None:
            raise ValueError("text_soft_prompt needs the trained control (the control stage)")
        with torch.no_grad():
            p = control.prompts[self.reader].detach().to(self.ctx.device)
            rows = [
                SoftPromptControl.slot(
                    p, self.lm.embed(torch.tensor([self.text_ids(e) or [self.prompt.eos]]))[0]
                )
                for e in examples
            ]
        return rows, [0] * len(examples)  # type: ignore[return-value]


# --- the latent and its control -------------------------------------------------------------------
@register_method("latent")
class Latent(Method):
    """The trained wire: encoder -> one message per example (header, codec payload, CRC32) -> adapter."""

    task_kinds = Method.ALL_KINDS

    uses = frozenset({"wire"})

    def source_of(self, e: Example) -> Example:
        """Whose text this example's latent encodes (its own)."""
        return e

    def slots(self, examples: Sequence[Example]) -> Slots:
        texts = [self.ctx.text(self.source_of(e)) for e in examples]
        return self.latent_of(texts, [self.ctx.budgets[e.id] for e in examples])

    def read(self, e: Example) -> str:
        return str(self.ctx.features.read_text(self.ctx.text(self.source_of(e))))

    def latent_of(self, texts: list[str], counts: list[int]) -> Slots:
        """Encode, pack, unpack and adapt: exactly what a receiver gets."""
        from latentwire_core.message import receive

        wire, codec = self.ctx.wire, self.ctx.codec
        if wire is None or codec is None:
            raise ValueError(f"{self.name} needs a trained wire and its codec")
        feats, mask = self.ctx.features.features(texts)
        msgs = wire.send(feats, mask, codec, self.ctx.fingerprint, counts)
        rx = receive(msgs, fingerprint=self.ctx.fingerprint)
        return self.to_reader(rx), [len(m) for m in msgs]

    def to_reader(self, z_rows: list[torch.Tensor]) -> list[Segment]:
        assert self.ctx.wire is not None
        return self.ctx.wire.adapt(z_rows, self.reader)


@register_method("latent_shuffled")
class LatentShuffled(Latent):
    """Control: another example's latent (a fixed derangement), cut to this example's M_i."""

    requires = ("latent",)

    def source_of(self, e: Example) -> Example:
        return self.ctx.partner[e.id]


@register_method("latent_zero")
class LatentZero(Latent):
    """Control: an all-zero ``Z`` of this example's M_i through the same codec and adapter (what the
    reader makes of the wire's bias alone, with no text behind it)."""

    requires = ("latent",)

    def latent_of(self, texts: list[str], counts: list[int]) -> Slots:
        import torch

        from latentwire_core.message import pack, receive

        wire, codec = self.ctx.wire, self.ctx.codec
        if wire is None or codec is None:
            raise ValueError(f"{self.name} needs a trained wire and its codec")
        d_z = wire.cfg.interlingua.d_z
        with torch.no_grad():
            msgs = [pack(torch.zeros(m, d_z), codec, self.ctx.fingerprint) for m in counts]
            rx = receive(msgs, fingerprint=self.ctx.fingerprint)
            return self.to_reader(rx), [len(msg) for msg in msgs]


# --- numeric baselines through the same codec -------------------------------------------------------
@register_method("mean_pool")
class MeanPool(Method):
    """The reader's own token embeddings averaged in ``M_i`` chunks, sent through the codec."""

    def slots(self, examples: Sequence[Example]) -> Slots:
        from latentwire_core.message import HEADER_BYTES
        from latentwire_eval.baselines import mean_pool_slot

        codec = self.ctx.codec
        assert codec is not None
        budgets = self.ctx.budgets
        rows = [mean_pool_slot(self.lm, self.text_ids(e), budgets[e.id])[None] for e in examples]
        payloads = [codec.encode(r)[0] for r in rows]  # (1, M_i, d_model) each
        rx = codec.decode_rows(payloads, [budgets[e.id] for e in examples], d_z=self.lm.d_model)
        return [r.to(self.ctx.device) for r in rx], [HEADER_BYTES + len(p) for p in payloads]  # framed alike


@register_method("pca")
class PCA(Method):
    """Mean-pooled chunks on the top principal components of training-text chunks, through the codec."""

    fits_on_train = True

    def fit(self) -> None:
        import numpy as np

        from latentwire_core.logs import get_logger
        from latentwire_eval.baselines import PCABaseline

        opt, train = self.ctx.options, self.ctx.train
        rank = int(opt.get("pca_rank", 0)) or int(opt["d_z"])
        fit = [self.text_ids(e) for e in train[: int(opt.get("pca_fit_examples", 1000))]]
        # fitted at the wire's mean M over the evaluation (its counts; n_tokens each for a fixed M)
        m_fit = max(1, round(float(np.mean(list(self.ctx.budgets.values())))))
        self.pca = PCABaseline(self.lm, fit, m=m_fit, rank=rank, seed=self.ctx.seed)  # training texts only
        get_logger("eval").info(
            "pca_fitted",
            model=self.reader,
            rank=self.pca.rank,
            explained_variance=round(self.pca.explained, 4),
        )

    def slots(self, examples: Sequence[Example]) -> Slots:
        import torch

        from latentwire_core.message import HEADER_BYTES

        codec, budgets = self.ctx.codec, self.ctx.budgets
        assert codec is not None
        codes = [
            torch.tensor(self.pca.codes(self.text_ids(e), budgets[e.id]), dtype=torch.float32)
            for e in examples
        ]
        payloads = [codec.encode(c[None])[0] for c in codes]
        rx = codec.decode_rows(payloads, [budgets[e.id] for e in examples], d_z=self.pca.rank)
        return [self.pca.reconstruct(c.numpy()).to(self.ctx.device) for c in rx], [
            HEADER_BYTES + len(p) for p in payloads
        ]


# --- without a reader, and combined -----------------------------------------------------------------
@register_method("linear_probe")
class LinearProbe(Method):
    """Logistic regression on masked-mean frozen features, fitted on train (a reference, no LLM)."""

    fits_on_train = True

    scope = "reference"
    task_kinds = ("classification",)

    @classmethod
    def reference_rows(cls, ctx: EvalContext, evaluation: Sequence[Example]) -> pd.DataFrame:
        import time

        import numpy as np
        import pandas as pd

        from latentwire_core.logs import get_logger
        from latentwire_eval.baselines import fit_linear_probe
        from latentwire_eval.records import Prediction

        fs, task = ctx.features, ctx.task

        def pooled(exs: Sequence[Example]) -> Any:
            out = []
            for i in range(0, len(exs), 256):
                f, mk = fs.features([e.source for e in exs[i : i + 256]])
                out.append(((f * mk[..., None]).sum(1) / mk.sum(1, keepdim=True).clamp(min=1)).numpy())
            return np.concatenate(out)

        t0 = time.perf_counter()
        predict = fit_linear_probe(pooled(ctx.train), [int(e.label or 0) for e in ctx.train], seed=ctx.seed)
        t1 = time.perf_counter()
        labels, proba = predict(pooled(evaluation))
        latency = (time.perf_counter() - t1) / max(len(evaluation), 1)
        rows = []
        for e, y, p in zip(evaluation, labels, proba, strict=True):
            out = task.labels[int(y)].strip()
            gold = task.labels[int(e.label or 0)].strip()
            rows.append(
                Prediction(
                    example_id=e.id,
                    model=NO_READER,
                    method="linear_probe",
                    source=e.source,
                    output=out,
                    gold=gold,
                    slot_tokens=0,
                    wire_bytes=0,
                    prompt_utf8_bytes=len(e.source.encode("utf-8")),
                    latency_s=latency,
                    label_logprobs=np.log(p + 1e-12).tolist(),
                    confidence=float(p.max()),
                    scores={"accuracy": float(out == gold)},
                    extra={"features": str(ctx.options.get("features_source", ""))},
                ).as_row()
            )
        get_logger("eval").info(
            "linear_probe",
            fit_seconds=round(t1 - t0, 2),
            accuracy=round(float(np.mean([r["accuracy"] for r in rows])), 4),
        )
        return pd.DataFrame(rows)


class _Combined(Method):
    scope = "combined"
    requires = ("latent",)
    min_readers = 2

    @classmethod
    def combine(cls, preds: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
        from latentwire_eval.report import derive_joint_oracle

        derived = derive_joint_oracle(preds, task)
        return derived[derived["method"] == cls.name]


@register_method("joint")
class Joint(_Combined):
    """Every reader answers from the latent; the answer of the most confident reader is kept."""

    confidence_of = "latent"


@register_method("oracle")
class Oracle(_Combined):
    """The best reader's latent answer per example (an upper bound on picking a reader)."""
