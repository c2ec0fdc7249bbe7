"""What a training step optimises, apart from the loop that runs it (:class:`~latentwire_hf.training.Trainer`).

* :class:`TaskObjective` (stage ``train``): answer CE including EOS, first-token CE, and
  optionally KL to the same frozen reader prompted with the full text on the first K
  answer tokens. The teacher's top-k logits are computed once per (reader, example) and
  cached, so the teacher does not run every step.
* :class:`ContentObjective` (stage ``pretrain``): reconstruction (after the soft tokens and a
  learned ``<rec>`` vector the reader reproduces the encoded text) and continuation (after
  ``<cont>`` it continues the text), plain CE on the frozen reader (ARC-Encoder, arXiv:2510.20535).

An objective is called with the (possibly DDP-wrapped) wire, the batch's item indices and
the readers active this step; it returns the loss and the statistics to log. Its ``probe``
measures, without gradients, whether the wire carries content the reader uses: the same loss
with each row's soft tokens replaced by the next row's (another text's latent), and the
*content gap* ``ce_shuffled - ce`` (nats per target token; about 0 means the reader ignores
what the latent says about this particular text).
"""

from __future__ import annotations

from latentwire_hf.config import PretrainConfig
from latentwire_hf.objectives.base import Objective, content_gap, content_hinge, slot_rows
from latentwire_hf.objectives.content import ContentItem, ContentObjective, content_items
from latentwire_hf.objectives.task import SoftPromptObjective, TaskObjective, TeacherCache

__all__ = [
    "ContentItem",
    "ContentObjective",
    "Objective",
    "PretrainConfig",
    "SoftPromptObjective",
    "TaskObjective",
    "TeacherCache",
    "content_gap",
    "content_hinge",
    "content_items",
    "slot_rows",
]
