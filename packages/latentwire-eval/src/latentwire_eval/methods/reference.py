"""The reference without a reader: logistic regression on mean-pooled frozen features, fitted on the
training split (classification)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from latentwire_core.tasks import Example
from latentwire_eval.methods.base import NO_READER, EvalContext, Method, register_method

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["LinearProbe", "fit_linear_probe"]


def fit_linear_probe(
    train_feats: np.ndarray, train_labels: Sequence[int], *, seed: int = 0
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Logistic regression on pooled frozen features; returns ``predict -> (labels, probabilities)``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(train_feats, list(train_labels))

    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return clf.predict(x), clf.predict_proba(x)

    return predict


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
        from latentwire_eval.records import Prediction

        fs, task = ctx.feature_source("linear_probe"), ctx.task

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
