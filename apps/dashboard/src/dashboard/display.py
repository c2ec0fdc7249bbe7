"""How tables look in the dashboard: scores to a few decimals, counts as integers, a method that sends
nothing as "–", tiny p-values as "< 1e-4"."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["display_formats", "fmt_p", "for_display", "styled"]


INT_COLUMNS = (
    "n",
    "n_groups",
    "wire_bytes",
    "prompt_utf8_bytes",
    "encoded_utf8_bytes",
    "compressed_utf8_bytes",
)


def for_display(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Counts and bytes as integers (not ``8,704.0000``), other numbers rounded."""
    out = df.copy()
    for c in out.columns:
        if c in INT_COLUMNS and pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].round().astype("Int64")
        elif pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out


P_COLUMNS = ("p_value", "p_holm", "p_holm_across_runs", "p_mcnemar", "p")


def fmt_p(p: object) -> str:
    """A p-value as people read it: 4 significant digits, and '< 1e-4' below that (never a bare 0)."""
    if p is None or pd.isna(p):  # type: ignore[call-overload]
        return "–"
    v = float(p)  # type: ignore[arg-type]
    return "< 1e-4" if v < 1e-4 else f"{v:.4g}"


def _fmt_int(v: object) -> str:
    return "–" if v is None or pd.isna(v) else str(round(float(v)))  # type: ignore[call-overload,arg-type]


def _fmt_bytes(v: object) -> str:
    """Wire bytes; 0 means nothing was sent (a text method), shown as '–'."""
    s = _fmt_int(v)
    return "–" if s == "0" else s


def display_formats(df: pd.DataFrame, digits: int = 3) -> dict[str, Any]:
    """Per-column formatters for a Styler: integers for counts and bytes, wire bytes 0 as '–' (nothing was
    sent: a text method), p-values with '< 1e-4', other numbers to ``digits`` decimals."""

    def fmt_float(v: object) -> str:
        return "–" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"  # type: ignore[call-overload,arg-type]

    out: dict[str, Any] = {}
    for c in df.columns:
        if c == "wire_bytes":
            out[c] = _fmt_bytes
        elif c in P_COLUMNS:
            out[c] = fmt_p
        elif c in INT_COLUMNS and pd.api.types.is_numeric_dtype(df[c]):
            out[c] = _fmt_int
        elif pd.api.types.is_float_dtype(df[c]):
            out[c] = fmt_float
    return out


def styled(df: pd.DataFrame, digits: int = 3) -> Any:
    """``df`` for display: no index column, and :func:`display_formats` (the data itself is unchanged)."""
    return df.style.hide(axis="index").format(display_formats(df, digits), escape="html")
