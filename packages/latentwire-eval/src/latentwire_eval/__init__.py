"""LatentWire evaluation: methods, metrics, baselines, statistics and reports.

Names are imported lazily (PEP 562), so ``latentwire_eval.methods`` (the method registry a TOML
file is validated against) loads without torch or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latentwire_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from latentwire_eval.analysis import compute_metrics
    from latentwire_eval.evaluate import evaluate_method, sequence_scores
    from latentwire_eval.methods import METHODS, EvalContext, Method, register_method
    from latentwire_eval.methods.combined import derive_joint_oracle
    from latentwire_eval.methods.text import token_budget_slot
    from latentwire_eval.metrics import GOLD_METRICS, METRICS, MetricSpec
    from latentwire_eval.report import write_report
    from latentwire_eval.stats import bootstrap_ci, holm, mcnemar_test, paired_bootstrap, paired_permutation

_WHERE: dict[str, str] = {
    "EvalContext": "latentwire_eval.methods",
    "GOLD_METRICS": "latentwire_eval.metrics",
    "METHODS": "latentwire_eval.methods",
    "METRICS": "latentwire_eval.metrics",
    "Method": "latentwire_eval.methods",
    "MetricSpec": "latentwire_eval.metrics",
    "bootstrap_ci": "latentwire_eval.stats",
    "compute_metrics": "latentwire_eval.analysis",
    "derive_joint_oracle": "latentwire_eval.methods.combined",
    "evaluate_method": "latentwire_eval.evaluate",
    "holm": "latentwire_eval.stats",
    "mcnemar_test": "latentwire_eval.stats",
    "paired_bootstrap": "latentwire_eval.stats",
    "paired_permutation": "latentwire_eval.stats",
    "register_method": "latentwire_eval.methods",
    "sequence_scores": "latentwire_eval.evaluate",
    "token_budget_slot": "latentwire_eval.methods.text",
    "write_report": "latentwire_eval.report",
}

__all__ = [
    "GOLD_METRICS",
    "METHODS",
    "METRICS",
    "EvalContext",
    "Method",
    "MetricSpec",
    "bootstrap_ci",
    "compute_metrics",
    "derive_joint_oracle",
    "evaluate_method",
    "holm",
    "mcnemar_test",
    "paired_bootstrap",
    "paired_permutation",
    "register_method",
    "sequence_scores",
    "token_budget_slot",
    "write_report",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())  # import the defining module on first use
