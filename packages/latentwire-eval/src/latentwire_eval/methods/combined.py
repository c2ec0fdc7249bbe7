"""The combined methods: rows derived from every reader's latent rows after all readers have run (the
most confident reader's answer, and the best reader's per example)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from latentwire_core.tasks import TaskSpec
from latentwire_eval.methods.base import ALL_READERS, Method, register_method

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Joint", "Oracle", "derive_joint_oracle"]


def derive_joint_oracle(preds: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """Rows for ``joint`` (per example, the model more confident in its own latent answer) and
    ``oracle`` (per example, the best model's latent answer: an upper bound, not a method), under the
    model :data:`~latentwire_eval.methods.ALL_READERS`; ``picked_model`` says whose answer it is."""
    import pandas as pd

    from latentwire_eval.metrics import headline_of

    lat = preds[preds["method"] == "latent"]
    if lat["model"].nunique() < 2:
        return preds.iloc[0:0]
    headline = headline_of(task)
    out = []
    for _, g in lat.groupby("example_id", sort=False):
        for name, pick in (
            ("joint", g.loc[g["confidence"].idxmax()]),
            ("oracle", g.loc[g[headline].idxmax()]),
        ):
            row = pick.copy()
            row["picked_model"] = pick["model"]
            row["model"] = ALL_READERS
            row["method"] = name
            out.append(row)
    return pd.DataFrame(out)


class _Combined(Method):
    scope = "combined"
    requires = ("latent",)
    min_readers = 2

    @classmethod
    def combine(cls, preds: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
        derived = derive_joint_oracle(preds, task)
        return derived[derived["method"] == cls.name]


@register_method("joint")
class Joint(_Combined):
    """Every reader answers from the latent; the answer of the most confident reader is kept."""

    confidence_of = "latent"


@register_method("oracle")
class Oracle(_Combined):
    """The best reader's latent answer per example (an upper bound on picking a reader)."""
