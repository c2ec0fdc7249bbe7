"""What the app checks of how Streamlit was started, before it shows any run."""

from __future__ import annotations

import os

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def problem(address: str | None, usage_stats: bool) -> str | None:
    """Why the app must not serve runs as started, or None.

    Args:
        address: Streamlit's ``server.address`` (empty or None: every interface).
        usage_stats: Streamlit's ``browser.gatherUsageStats``.
    """
    exposed = os.environ.get("LATENTWIRE_DASHBOARD_EXPOSE", "")
    if (address or "") not in LOOPBACK and address != exposed:
        return (
            f"this dashboard would listen on {address or 'every interface'}, beyond this machine; runs can hold "
            "private text. Start it with `python -m dashboard` (127.0.0.1), or `python -m dashboard --address "
            f"{address or '0.0.0.0'}` to expose it on purpose."
        )
    if usage_stats:
        return "Streamlit would send usage statistics: start the dashboard with `python -m dashboard`."
    return None
