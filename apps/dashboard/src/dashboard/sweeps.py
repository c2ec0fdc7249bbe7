"""Reading sweep folders (``runner sweep``): the points, their status and the sweep's aggregated report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pandas as pd

from dashboard.runs import read_charts, read_json

__all__ = ["SweepData", "list_sweeps", "load_sweep"]


@attrs.define
class SweepData:
    """What ``python -m runner sweep`` left in ``<runs>/<sweep>/``: its plan, points and report."""

    path: Path
    spec: dict[str, Any]
    points: pd.DataFrame  # name, status, settings
    results: pd.DataFrame | None
    tests: pd.DataFrame | None
    summary: str
    missing: list[str]
    charts: list[dict[str, Any]] = attrs.field(factory=list)  # report/charts.json

    @property
    def name(self) -> str:
        return self.path.name


def list_sweeps(root: Path) -> list[SweepData]:
    """Every sweep folder (one holding ``sweep.json``) under ``root``, by name."""
    if not root.is_dir():
        return []
    return [load_sweep(p) for p in sorted(root.iterdir()) if (p / "sweep.json").is_file()]


def _point_status(path: Path) -> str:
    if not (path / "manifest.json").is_file():
        return "not started"
    try:
        stages = json.loads((path / "manifest.json").read_text()).get("stages", {})
    except (OSError, ValueError, RecursionError, AttributeError):  # not JSON, too deep, not an object
        return "manifest unreadable"
    return "done" if stages.get("report", {}).get("status") == "done" else "partial"


def load_sweep(path: Path) -> SweepData:
    """Read a sweep folder; ``missing`` names what is not there (yet) or cannot be read."""
    missing: list[str] = []
    spec = read_json(path / "sweep.json", missing, "sweep.json") or {}
    rows = []
    for pt in spec.get("points", []):
        d = Path(pt.get("dir", path / str(pt.get("name", ""))))
        d = d if d.is_dir() else path / str(pt.get("name", ""))
        params = ", ".join(f"{k}={v}" for k, v in sorted(pt.get("params", {}).items())) or "(base)"
        rows.append(
            {
                "point": pt.get("name", "?"),
                "settings": params,
                "seed": pt.get("seed"),
                "status": _point_status(d),
            }
        )
    tables: dict[str, pd.DataFrame | None] = {}
    for name in ("results", "tests"):
        f = path / "report" / f"{name}.csv"
        tables[name] = None
        if not f.is_file():
            missing.append(f"report/{name}.csv (aggregate with `python -m runner sweep ... --report-only`)")
            continue
        try:
            tables[name] = pd.read_csv(f)
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
        except (OSError, ValueError) as e:
            missing.append(f"report/{name}.csv is unreadable ({type(e).__name__}: {e})")
    summary = path / "report" / "summary.md"
    return SweepData(
        path=path,
        spec=spec,
        points=pd.DataFrame(rows, columns=["point", "settings", "seed", "status"]),
        results=tables["results"],
        tests=tables["tests"],
        summary=summary.read_text(encoding="utf-8", errors="replace") if summary.is_file() else "",
        missing=missing,
        charts=read_charts(path / "report", missing),
    )
