"""``python -m dashboard [--runs-dir runs] [--address 127.0.0.1] [--port 8501]``: the dashboard, started the
same way from any folder.

Streamlit reads ``.streamlit/config.toml`` from the folder it starts in only, so the bind address and
the usage statistics are passed here as flags: the dashboard listens on this machine only and sends no
usage statistics, wherever it is started. ``--address 0.0.0.0`` (or another interface) exposes it on
purpose; the app refuses any other way of listening beyond this machine (:func:`dashboard.guard.check`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    p.add_argument("--runs-dir", default="runs", help="the folder of run folders (default: runs)")
    p.add_argument(
        "--address", default="127.0.0.1", help="interface to listen on (default: this machine only)"
    )
    p.add_argument("--port", type=int, default=8501)
    args = p.parse_args(argv)
    app = Path(__file__).with_name("app.py")
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.address, "--server.port", str(args.port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--", "--runs-dir", args.runs_dir,
    ]  # fmt: skip
    env = dict(os.environ)
    if args.address not in LOOPBACK:  # asked for by name: the app lets it through
        env["LATENTWIRE_DASHBOARD_EXPOSE"] = args.address
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
