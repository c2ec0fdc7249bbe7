"""LatentWire evaluation: metrics, baselines, statistics and reports."""

from latentwire_eval.evaluate import Prompt, evaluate_method, sequence_scores, token_budget_slot
from latentwire_eval.metrics import GOLD_METRICS, HEADLINE, METRICS, TASK_METRICS, MetricSpec
from latentwire_eval.report import compute_metrics, derive_joint_oracle, write_report
from latentwire_eval.stats import bootstrap_ci, holm, mcnemar_test, paired_bootstrap, paired_permutation

__all__ = [
    "GOLD_METRICS",
    "HEADLINE",
    "METRICS",
    "TASK_METRICS",
    "MetricSpec",
    "Prompt",
    "bootstrap_ci",
    "compute_metrics",
    "derive_joint_oracle",
    "evaluate_method",
    "holm",
    "mcnemar_test",
    "paired_bootstrap",
    "paired_permutation",
    "sequence_scores",
    "token_budget_slot",
    "write_report",
]
