"""Run one method (text, latent, token-budget, ...) for one frozen model through the shared prompt builder.

Every method differs only in what fills the slot; the prompt parts around it,
the scoring and the generation caps are the same (docs/design.md "Ports"). The
model is any :class:`~latentwire_core.ports.FrozenLM`; a ``prefix_cache`` method,
where the model has one, lets the constant prompt prefix run once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from latentwire_core.losses import gather_at, prediction_positions
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import Segment, token_ids
from latentwire_core.tasks import Example
from latentwire_eval.bytesize import text_bytes
from latentwire_eval.gencache import GenerationCache
from latentwire_eval.metrics import first_line, metric_fns, normalize_answer, postprocess_answer
from latentwire_eval.records import Prediction

__all__ = ["answer_slots", "evaluate_method"]

SlotFn = Callable[[Sequence[Example]], tuple[list[Segment], list[int]]]
"""examples -> (slot contents, wire bytes per example (0 for text methods))."""


@torch.no_grad()
def _score_labels(
    prompt: SlotPrompt, slots: list[Segment], tails: list[list[int]] | None = None
) -> list[list[float]]:
    """Log-probability of each label verbaliser after the prompt, per example."""
    firsts = [ids[0] for ids in prompt.label_ids]
    if len(set(firsts)) == len(
        firsts
    ):  # distinct first tokens: one forward, read the next-token distribution
        b, h = prompt.hidden(slots, tails=tails)
        last = b.lengths - 1  # (B,) last real position of each right-padded row
        logp = torch.log_softmax(prompt.lm.logits(h[torch.arange(h.shape[0]), last]).float(), dim=-1)
        out: list[list[float]] = logp[:, firsts].tolist()
        return out
    scores = []
    for ids in prompt.label_ids:  # general case: sum of the whole verbaliser's log-probs
        b, h = prompt.hidden(slots, answers=[ids] * len(slots), tails=tails)
        pos = prediction_positions(b.labels)
        lp = torch.log_softmax(prompt.lm.logits(gather_at(h, pos)).float(), dim=-1)
        tok = lp[torch.arange(len(pos)), pos.targets]
        scores.append(torch.zeros(len(slots)).index_add_(0, pos.rows.cpu(), tok.cpu()).tolist())
    return [list(x) for x in zip(*scores, strict=True)]


@torch.no_grad()
def sequence_scores(
    prompt: SlotPrompt,
    slots: list[Segment],
    targets: Sequence[Sequence[int]],
    *,
    label_ids: Sequence[int] = (),
    tails: Sequence[Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """Teacher-forced scores of ``targets`` after each prompt (labels unshifted, shifted once in core).

    Returns per example: mean NLL per target token (EOS included when the caller appends it),
    the summed log-probability, and the rank of the first target token (for first-token acc@k).
    """
    b, h = prompt.hidden(slots, answers=[list(t) for t in targets], tails=tails)
    pos = prediction_positions(b.labels)
    logp = torch.log_softmax(prompt.lm.logits(gather_at(h, pos)).float(), dim=-1)  # (N, V)
    tok = logp[torch.arange(len(pos)), pos.targets]  # (N,)
    n = len(slots)
    rows = pos.rows.cpu()
    total = torch.zeros(n).index_add_(0, rows, tok.cpu())
    count = torch.zeros(n).index_add_(0, rows, torch.ones(len(pos)))
    first = (pos.step == 0).cpu()
    ranks = torch.full((n,), -1, dtype=torch.long)
    first_logp = logp[first.to(logp.device)]
    first_tok = pos.targets[first.to(pos.targets.device)]
    gold_lp = first_logp[torch.arange(first_logp.shape[0]), first_tok]
    ranks[rows[first]] = (first_logp > gold_lp[:, None]).sum(-1).cpu()
    # the next-token distribution after the prompt doubles as label-verbaliser scores (same forward)
    label_lp = torch.zeros(n, len(label_ids))
    if label_ids:
        label_lp[rows[first]] = first_logp[:, list(label_ids)].cpu()
    return [
        {
            "nll": float(-total[i] / count[i].clamp(min=1)),
            "logprob": float(total[i]),
            "first_rank": int(ranks[i]),
            "label_logprobs": label_lp[i].tolist(),
        }
        for i in range(n)
    ]


def _clean(prompt: SlotPrompt, texts: list[str]) -> list[str]:
    if prompt.task.kind == "qa":  # one post-processing for every method (metrics.postprocess_answer)
        return [postprocess_answer(t) for t in texts]
    if prompt.task.kind == "summary":  # one sentence is asked for: the first non-empty line is scored
        return [first_line(t).strip() for t in texts]
    return [t.strip() for t in texts]


@torch.no_grad()
def _generate(
    prompt: SlotPrompt, slots: list[Segment], max_new_tokens: int, tails: list[list[int]] | None = None
) -> tuple[list[str], list[str]]:
    """Greedy answers: (raw decoded texts, post-processed outputs that are scored)."""
    qa = prompt.task.kind == "qa"  # only the first line is scored (metrics.first_line): stop there
    out = prompt.generate(slots, tails, max_new_tokens=max_new_tokens, stop_at_line=qa)
    texts = [prompt.lm.decode(ids) for ids in out]
    return texts, _clean(prompt, texts)


def _generate_cached(
    prompt: SlotPrompt,
    slots: list[Segment],
    max_new_tokens: int,
    tails: list[list[int]] | None,
    cache: GenerationCache | None,
) -> tuple[list[str], list[str], list[float | None]]:
    """:func:`_generate` through ``cache`` when every slot is token ids. The third list is each
    row's generation time per example (cached rows: as measured when computed), or ``None``s
    when the cache was not used."""
    id_slots = token_ids(slots)
    if cache is None or id_slots is None:
        texts, out = _generate(prompt, slots, max_new_tokens, tails)
        return texts, out, [None] * len(slots)
    stop = prompt.task.kind == "qa"
    ids = [
        [*prompt.before, *(int(t) for t in s), *(tails[i] if tails is not None else []), *prompt.after]
        for i, s in enumerate(id_slots)
    ]
    keys = [cache.key(x, max_new_tokens=max_new_tokens, stop_at_line=stop) for x in ids]
    hit = cache.get(keys)
    miss = [i for i, k in enumerate(keys) if k not in hit]
    raw: list[str] = [hit[k][0] if k in hit else "" for k in keys]
    lat: list[float | None] = [hit[k][1] if k in hit else None for k in keys]
    if miss:
        t0 = time.perf_counter()
        fresh, _ = _generate(
            prompt, [slots[i] for i in miss], max_new_tokens, [tails[i] for i in miss] if tails else None
        )
        per = (time.perf_counter() - t0) / len(miss)
        for i, text in zip(miss, fresh, strict=True):
            raw[i], lat[i] = text, per
        cache.put([(keys[i], raw[i], per) for i in miss])
    return raw, _clean(prompt, raw), lat


def _cached_rows(
    prompt: SlotPrompt,
    slots: list[Segment],
    tails: list[list[int]] | None,
    cache: GenerationCache | None,
    key: Callable[[int, list[int]], str],
    compute: Callable[[list[int]], list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], list[float | None]]:
    """``compute(rows)`` (one JSON-able record per row) through ``cache`` when every slot is token
    ids; ``key(row, prompt ids)`` names a row's record. The second list is each row's compute time
    (cached rows: as measured when computed), or ``None``s when the cache was not used."""
    id_slots = token_ids(slots)
    if cache is None or id_slots is None:
        return compute(list(range(len(slots)))), [None] * len(slots)
    ids = [
        [*prompt.before, *(int(t) for t in s), *(tails[i] if tails is not None else []), *prompt.after]
        for i, s in enumerate(id_slots)
    ]
    keys = [key(i, x) for i, x in enumerate(ids)]
    hit = cache.get(keys)
    out: list[dict[str, Any]] = [json.loads(hit[k][0]) if k in hit else {} for k in keys]
    lat: list[float | None] = [hit[k][1] if k in hit else None for k in keys]
    miss = [i for i, k in enumerate(keys) if k not in hit]
    if miss:
        t0 = time.perf_counter()
        fresh = compute(miss)
        per = (time.perf_counter() - t0) / len(miss)
        for i, rec in zip(miss, fresh, strict=True):
            out[i], lat[i] = rec, per
        cache.put([(keys[i], json.dumps(out[i]), per) for i in miss])
    return out, lat


def _label_scores(
    prompt: SlotPrompt,
    slots: list[Segment],
    targets: list[list[int]],
    tails: list[list[int]] | None,
    cache: GenerationCache | None,
    *,
    gold_scores: bool,
) -> tuple[list[dict[str, Any]], list[float | None]]:
    """Each row's label log-probabilities (``label_logprobs``) and, with ``gold_scores``, the gold
    answer's teacher-forced scores (:func:`sequence_scores`), through ``cache`` for token prompts.
    Distinct first label tokens: one forward gives both; otherwise each verbaliser is scored whole."""
    firsts = [ids[0] for ids in prompt.label_ids]
    one_pass = gold_scores and len(set(firsts)) == len(firsts)

    def sub(rows: list[int]) -> tuple[list[Segment], list[list[int]] | None]:
        return [slots[i] for i in rows], [tails[i] for i in rows] if tails is not None else None

    def compute(rows: list[int]) -> list[dict[str, Any]]:
        sl, tl = sub(rows)
        if one_pass:
            return sequence_scores(prompt, sl, [targets[i] for i in rows], label_ids=firsts, tails=tl)
        scores = _score_labels(prompt, sl, tl)
        gold = (
            sequence_scores(prompt, sl, [targets[i] for i in rows], tails=tl)
            if gold_scores
            else [{}] * len(rows)
        )
        return [{**g, "label_logprobs": list(sc)} for g, sc in zip(gold, scores, strict=True)]

    version = "label-scores-v1" if one_pass else f"label-scores-full-v1-gold={gold_scores}"
    return _cached_rows(
        prompt,
        slots,
        tails,
        cache,
        lambda i, ids: cache.record_key(version, ids, targets[i], prompt.label_ids) if cache else "",
        compute,
    )


@torch.no_grad()
def answer_slots(
    prompt: SlotPrompt,
    slots: list[Segment],
    tails: list[list[int]] | None = None,
    *,
    max_new_tokens: int | None = None,
) -> list[str]:
    """The answers a reader gives for filled slots, as evaluation scores them: the best label
    verbaliser for a classification task, the post-processed greedy answer otherwise (at most
    ``max_new_tokens``, by default the task's limit)."""
    if prompt.task.kind == "classification":
        scores = _score_labels(prompt, slots, tails)
        return [prompt.task.labels[max(range(len(sc)), key=sc.__getitem__)].strip() for sc in scores]
    limit = prompt.task.max_new_tokens if max_new_tokens is None else max_new_tokens
    return _generate(prompt, slots, limit, tails)[1]


def evaluate_method(
    prompt: SlotPrompt,
    examples: Sequence[Example],
    slot_fn: SlotFn,
    *,
    method: str,
    batch_size: int = 16,
    gold_scores: bool = True,
    own_confidence: bool = True,
    progress: Callable[[int], None] | None = None,
    encoded: Callable[[Example], str] | None = None,
    cache: GenerationCache | None = None,
    replayed: Callable[[], float] | None = None,
) -> list[dict[str, Any]]:
    """Score ``method`` on ``examples`` for ``prompt``'s model.

    Returns one row per example: id, model, method, output, gold, per-metric scores,
    slot tokens, wire bytes, UTF-8 prompt bytes and per-example latency (batched;
    slot construction such as the encoder's forward included).

    Args:
        own_confidence: score each generated answer's own NLL (what ``joint`` picks by; one forward).
        cache: answers (label scores, for a classification task) of this reader to all-token
            prompts, kept across runs (:mod:`.gencache`).
        replayed: seconds of slot computation served from a disk cache since the last call
            (added to the batch's latency).
        encoded: the text this method actually read for an example (after any truncation);
            gives ``encoded_utf8_bytes`` and ``answer_in_slot`` (was a gold answer still there?).
    """
    task, lm = prompt.task, prompt.lm
    fns = metric_fns(task)
    rows: list[dict[str, Any]] = []
    # Batches of similar length (by the example's UTF-8 size, for every method alike) waste
    # little compute on padding; the rows come back in the examples' order.
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].source.encode("utf-8")), i))
    for start in range(0, len(order), batch_size):
        chunk = [examples[i] for i in order[start : start + batch_size]]
        t0 = time.perf_counter()
        slots, wire_bytes = slot_fn(chunk)
        extra = replayed() if replayed is not None else 0.0  # cached slot contents: their compute time
        slot_s = (time.perf_counter() - t0 + extra) / len(chunk)
        tails = prompt.tails(chunk)
        raw: list[str] = []
        cached_latency: list[float | None] = [None] * len(chunk)
        confidence: list[float]
        gold_sc: list[dict[str, Any]] = [{} for _ in chunk]
        if task.kind == "classification":  # label scores (+ the gold answer's, one forward when it can)
            targets = [[*lm.tokenize([task.answer_text(e)])[0], prompt.eos] for e in chunk]
            recs, cached_latency = _label_scores(
                prompt, slots, targets, tails, cache, gold_scores=gold_scores
            )
            scores = [r.pop("label_logprobs") for r in recs]
            gold_sc = recs if gold_scores else gold_sc
            outputs = [task.labels[max(range(len(s)), key=s.__getitem__)].strip() for s in scores]
            confidence = [float(torch.softmax(torch.tensor(s), 0).max()) for s in scores]
        else:
            scores = [[] for _ in chunk]
            raw, outputs, cached_latency = _generate_cached(prompt, slots, task.max_new_tokens, tails, cache)
        latency = (time.perf_counter() - t0 + extra) / len(chunk)
        if task.kind != "classification":
            if own_confidence:  # the model's own log-likelihood of its answer, for `joint`
                own = [[*lm.tokenize([" " + o])[0], prompt.eos] for o in outputs]
                confidence = [-r["nll"] for r in sequence_scores(prompt, slots, own, tails=tails)]
            else:
                confidence = [float("nan")] * len(chunk)
        if gold_scores and task.kind != "classification":
            targets = [[*lm.tokenize([task.answer_text(e)])[0], prompt.eos] for e in chunk]
            gold_sc = sequence_scores(prompt, slots, targets, tails=tails)
        raw = raw or list(outputs)
        for ex, out, rw, sc, slot, wb, conf, gs, lat_i in zip(
            chunk, outputs, raw, scores, slots, wire_bytes, confidence, gold_sc, cached_latency, strict=True
        ):
            gold = task.golds(ex)
            n_slot = int(slot.shape[0]) if isinstance(slot, torch.Tensor) else len(slot)
            pred = Prediction(
                example_id=ex.id,
                model=lm.name,
                method=method,
                source=ex.source,
                output=out,
                raw_output=rw,
                gold=" | ".join(gold),
                has_answer=bool(gold),
                group=ex.group or ex.id,
                slot_tokens=n_slot,
                # the whole prompt the model reads, this method's slot included
                prompt_tokens=len(prompt.before) + n_slot + len(prompt.after),
                wire_bytes=int(wb),
                prompt_utf8_bytes=len(ex.source.encode("utf-8")),
                compressed_utf8_bytes=(tb := text_bytes(prompt.slot_text(ex).strip())).utf8,
                compressed_zstd_bytes=tb.zstd,
                compressed_gzip_bytes=tb.gzip,
                latency_s=latency if lat_i is None else slot_s + lat_i,
                label_logprobs=sc,
                confidence=conf,
            )
            if encoded is not None:
                seen = encoded(ex)
                pred.encoded_utf8_bytes = len(seen.encode("utf-8"))
                if task.kind == "qa" and gold:
                    low = normalize_answer(seen)
                    pred.answer_in_slot = any(normalize_answer(g) in low for g in gold if normalize_answer(g))
            if gs:
                pred.extra = {
                    "nll_per_token": gs["nll"],
                    "first_token_acc1": float(gs["first_rank"] == 0),
                    "first_token_acc5": float(0 <= gs["first_rank"] < 5),
                }
            pred.scores = {m: fn(out, gold) for m, fn in fns.items()}
            rows.append(pred.as_row())
        if progress is not None:
            progress(len(chunk))
    back = {i: k for k, i in enumerate(order)}
    return [rows[back[i]] for i in range(len(examples))]
