"""The dashboard's network exposure (issue 25, item 4)."""

from __future__ import annotations


def test_the_dashboard_listens_on_this_machine_only_by_default() -> None:
    """Runs can hold private text: Streamlit, started from the repository root as the README says, reads
    .streamlit/config.toml and binds 127.0.0.1 (issue 25, item 4)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        "from streamlit import config; config.get_config_options(force_reparse=True); "
        "print(config.get_option('server.address'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "127.0.0.1"
