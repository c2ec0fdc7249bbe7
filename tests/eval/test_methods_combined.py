"""The combined methods: joint and oracle rows derived from every reader's latent rows."""

from __future__ import annotations

from eval_rows import two_reader_rows

from latentwire_core.tasks import get_task
from latentwire_eval.methods import ALL_READERS
from latentwire_eval.methods.combined import derive_joint_oracle

SST2 = get_task("sst2")


def test_joint_picks_the_more_confident_model_and_oracle_the_best() -> None:
    preds = two_reader_rows()
    derived = derive_joint_oracle(preds, SST2)
    assert set(derived["model"]) == {ALL_READERS}  # combined rows are no reader's own
    joint = derived[derived["method"] == "joint"].set_index("example_id")
    oracle = derived[derived["method"] == "oracle"].set_index("example_id")
    assert joint.loc["e1", "picked_model"] == "a" and joint.loc["e0", "picked_model"] == "b"
    assert (oracle["accuracy"] == 1.0).all()  # one of the two models is right on every example here
