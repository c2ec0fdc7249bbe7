"""Datasets as one :class:`Example` schema, from the offline files or the ``datasets`` hub.

:mod:`.readers` parses each file format (naming the file and line of a malformed row), :mod:`.sources`
says where each task's examples come from (one record per task), :mod:`.splits` is the split policy
and :mod:`.load` puts them together. Train and evaluation examples never overlap (checked on ids and
source texts).
"""

from __future__ import annotations

from latentwire_core.tasks import Example
from latentwire_hf.data.load import data_dir_from_env, load_examples, load_train_eval
from latentwire_hf.data.readers import DataError, LoadReport, read_squad
from latentwire_hf.data.splits import check_disjoint

__all__ = [
    "DataError",
    "Example",
    "LoadReport",
    "check_disjoint",
    "data_dir_from_env",
    "load_examples",
    "load_train_eval",
    "read_squad",
]
