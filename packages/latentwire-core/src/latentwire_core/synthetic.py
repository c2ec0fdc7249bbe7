"""Bundled content tasks generated from a seed: key-value ``recall`` (no download needed).

A ``recall`` context binds K names to K animals, one short fact each ("Dana has a fox."); the
question asks for one name's animal ("What animal does Dana have?") and the answer is the animal.
A reader that sees the facts copies the value; without them it can only guess among
:data:`ANIMALS`, so the text-vs-no-context gap a wire must cross is large even for 135M readers
(the probe behind the design handbook's section 9).

Training and evaluation items are different draws (separate seeded streams), and no evaluation
context is ever a training context (:func:`recall_split` removes any collision, deterministically).
"""

from __future__ import annotations

import random

from latentwire_core.tasks import Example, qa_source

__all__ = ["ANIMALS", "NAMES", "RECALL_SIZES", "RELATIONS", "recall_examples", "recall_split", "span_windows"]

# Common first names, each one token for both bundled readers (SmolLM2, Gemma3).
NAMES = (
    "Dana", "Lee", "Maria", "Omar", "Kate", "Nina", "Paul", "Sara", "Tom",
    "Lucy", "Ben", "Anna", "Jack", "Mia", "Sam", "Rosa", "Ivan", "Emma", "Leo",
    "Hugo", "Ella", "Noah", "Lily", "Max", "Ruth", "Alan", "Jane", "Carl",
    "Iris", "Dean", "Grace", "Mark", "Adam", "Fred", "Vera", "Luke",
    "Amy", "Owen", "Raj", "Finn", "Eric", "Glen",
)  # fmt: skip

# Relations: (fact template, question template, values); every value is one token for both bundled
# readers (multi-token values were copied less reliably by SmolLM2-135M). A context holds K facts of K different
# relations about K different people, so a question names both the person and the relation.
RELATIONS = (
    ("{n} has a {v}.", "What animal does {n} have?", (
        "fox", "dog", "cat", "horse", "rabbit", "goat", "parrot", "turtle", "snake", "frog",
        "mouse", "duck", "pig", "cow", "sheep", "lion", "tiger", "bear", "wolf", "monkey")),
    ("{n} lives in {v}.", "Which city does {n} live in?", (
        "Paris", "London", "Rome", "Berlin", "Madrid", "Tokyo", "Cairo", "Lima", "Oslo", "Vienna",
        "Dublin", "Prague", "Athens", "Lisbon", "Moscow", "Delhi", "Seoul", "Sydney", "Boston", "Chicago")),
    ("{n} plays the {v}.", "Which instrument does {n} play?", (
        "violin", "piano", "guitar", "flute", "drums", "trumpet", "harp", "organ",
        )),
    ("{n} likes the color {v}.", "Which color does {n} like?", (
        "red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "black", "white",
        "gray", "gold", "silver", "violet", )),
    ("{n} drinks {v}.", "What does {n} drink?", (
        "tea", "coffee", "milk", "juice", "water", "cocoa", "soda", "lemonade", "cider", "wine",
        "beer", "smoothies", )),
    ("{n} works as a {v}.", "What is {n}'s job?", (
        "baker", "nurse", "teacher", "pilot", "farmer", "lawyer", "dentist", "painter",
        "chef", "driver", "doctor", "writer", "soldier", "tailor", "judge", "miner")),
    ("{n} eats a {v}.", "Which fruit does {n} eat?", (
        "mango", "banana", "pear", "peach", "plum", "lemon", "kiwi", "cherry", "grape",
        "papaya", "coconut", "lime", "fig")),
    ("{n} plays {v}.", "Which sport does {n} play?", (
        "tennis", "soccer", "golf", "hockey", "rugby", "cricket", "baseball", "volleyball",
        "basketball", "squash")),
)  # fmt: skip
ANIMALS = RELATIONS[0][2]

RECALL_SIZES = {"train": 20_000, "eval": 2_000}
"""Items generated per split (a task's ``train_limit`` / ``eval_limit`` take a prefix / a draw)."""


def _item(rng: random.Random, k: int, n: int, split: str) -> Example:
    names = rng.sample(NAMES, k)
    rels = rng.sample(range(len(RELATIONS)), k)
    values = [rng.choice(RELATIONS[r][2]) for r in rels]
    asked = rng.randrange(k)
    context = " ".join(
        RELATIONS[r][0].format(n=nm, v=v) for r, nm, v in zip(rels, names, values, strict=True)
    )
    question = RELATIONS[rels[asked]][1].format(n=names[asked])
    return Example(
        id=f"recall{k}-{split}-{n}",
        task=f"recall_k{k}",
        source=qa_source(question, context),
        question=question,
        context=context,
        answers=(values[asked],),
        # no group: every item is an independent draw (a group is a cluster such as a SQuAD article)
    )


def recall_examples(*, k: int, split: str, n: int | None = None, seed: int = 0) -> list[Example]:
    """``n`` recall items with ``k`` facts each, from the ``split`` stream (``train`` or ``eval``).

    The same ``(k, split, seed)`` always gives the same items, and a shorter ``n`` is a prefix
    of a longer one. Use :func:`recall_split` for the two splits together (it removes any
    training item whose context is also an evaluation context).

    Raises:
        ValueError: ``k`` outside 1..len(ANIMALS) or an unknown split.
    """
    if not 1 <= k <= len(RELATIONS):
        raise ValueError(f"recall: k must be in 1..{len(RELATIONS)} (one fact per relation), got {k}")
    if split not in RECALL_SIZES:
        raise ValueError(f"recall: split must be 'train' or 'eval', got {split!r}")
    rng = random.Random(f"recall|k={k}|{split}|seed={seed}")  # str seeds are stable across runs
    return [_item(rng, k, i, split) for i in range(RECALL_SIZES[split] if n is None else n)]


def _facts(e: Example) -> frozenset[str]:
    """The set of facts of a context, whatever their order."""
    return frozenset(s.strip(". ") for s in e.context.split(". "))


def recall_split(*, k: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """``(train, eval)`` for ``recall_k{k}``: no evaluation context (nor fact set) occurs in training."""
    evaluation = recall_examples(k=k, split="eval", seed=seed)
    seen = {_facts(e) for e in evaluation}
    train = [e for e in recall_examples(k=k, split="train", seed=seed) if _facts(e) not in seen]
    return train, evaluation


def span_windows(text: str, words: int) -> list[str]:
    """Consecutive, non-overlapping windows of exactly ``words`` whitespace-separated words of ``text``
    (the ``reconstruct`` task's spans and the pretraining curriculum's)."""
    w = text.split()
    return [" ".join(w[i : i + words]) for i in range(0, len(w) - words + 1, words)]
