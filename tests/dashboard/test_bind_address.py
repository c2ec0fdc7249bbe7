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


def test_the_launcher_binds_this_machine_and_turns_usage_statistics_off_from_any_folder(
    tmp_path, monkeypatch
) -> None:
    """``python -m dashboard`` passes the settings as flags, so the working folder does not matter."""
    import dashboard.__main__ as launcher

    seen: dict = {}
    monkeypatch.setattr(launcher.os, "execvpe", lambda f, cmd, env: seen.update(cmd=cmd, env=env))
    monkeypatch.chdir(tmp_path)
    launcher.main(["--runs-dir", "r"])
    cmd = " ".join(seen["cmd"])
    assert "--server.address 127.0.0.1" in cmd and "--browser.gatherUsageStats false" in cmd
    assert cmd.endswith("-- --runs-dir r") and "LATENTWIRE_DASHBOARD_EXPOSE" not in seen["env"]
    launcher.main(["--address", "0.0.0.0"])
    assert seen["env"]["LATENTWIRE_DASHBOARD_EXPOSE"] == "0.0.0.0"


def test_the_app_refuses_to_listen_beyond_this_machine_unless_asked_by_name(monkeypatch) -> None:
    from dashboard.guard import problem

    monkeypatch.delenv("LATENTWIRE_DASHBOARD_EXPOSE", raising=False)
    assert problem("127.0.0.1", False) is None and problem("localhost", False) is None
    assert "every interface" in (problem(None, False) or "")  # streamlit's default outside the repo root
    assert "beyond this machine" in (problem("0.0.0.0", False) or "")
    assert "usage statistics" in (problem("127.0.0.1", True) or "")
    monkeypatch.setenv("LATENTWIRE_DASHBOARD_EXPOSE", "0.0.0.0")
    assert problem("0.0.0.0", False) is None and problem("10.0.0.1", False) is not None
