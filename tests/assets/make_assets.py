"""Cut the tiny benchmark slices in ``tests/assets/data`` from the offline files (docs/design.md "Models and data that work with no network").

    python tests/assets/make_assets.py /path/to/shared/data

The test suite reads these when the full files are absent (``LATENTWIRE_DATA`` unset and no
``../shared/data``), so it runs from the repository alone. Same layout and formats as the real
files; every slice is a prefix (SST-2 rows, SQuAD articles / paragraphs / questions), so each
example is byte-identical to the original. Licences: SST-2 (GLUE) as distributed with GLUE; SQuAD
v1.1 / v2.0 CC BY-SA 4.0 (Rajpurkar et al. 2016, 2018).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"


def _tsv(src: Path, dst: Path, rows: int) -> None:
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(lines[: rows + 1]), encoding="utf-8")  # header + rows


def _squad(src: Path, dst: Path, articles: int, paragraphs: int, questions: int) -> None:
    doc = json.loads(src.read_text(encoding="utf-8"))
    data = []
    for art in doc["data"][:articles]:
        paras = [{**p, "qas": p["qas"][:questions]} for p in art["paragraphs"][:paragraphs]]
        data.append({"title": art["title"], "paragraphs": paras})
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(
        json.dumps({"version": doc.get("version", ""), "data": data}, ensure_ascii=False), encoding="utf-8"
    )


def main(root: Path) -> None:
    _tsv(root / "sst2" / "train.tsv", OUT / "sst2" / "train.tsv", 160)
    _tsv(root / "sst2" / "dev.tsv", OUT / "sst2" / "dev.tsv", 60)
    _squad(
        root / "squad" / "train-v1.1-44articles.json", OUT / "squad" / "train-v1.1-44articles.json", 6, 2, 4
    )
    _squad(root / "squad" / "dev-v1.1.json", OUT / "squad" / "dev-v1.1.json", 12, 1, 4)
    # v2: the loader trains on the first 12 articles and evaluates on the rest
    _squad(root / "squad_v2" / "dev-v2.0-half.json", OUT / "squad_v2" / "dev-v2.0-half.json", 16, 1, 10)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
