"""``python -m runner experiment.toml [--set key=value ...] [--stage ...] [--fresh]`` (runner.cli).

Also ``python -m runner sweep experiment.toml --grid key=v1,v2 --seeds 0,1,2`` (runner.sweep) and
``python -m runner encode RUN ...`` / ``python -m runner answer RUN ...`` (runner.wire_cli),
``python -m runner serve WIRE ...`` (runner.serve) and ``python -m runner send URL MSG ...`` (runner.client).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("encode", "answer"):  # two processes talking (runner.wire_cli)
        from runner.wire_cli import main as wire_main

        return wire_main(argv[0], argv[1:])
    if argv and argv[0] == "serve":  # the receiver service (runner.serve)
        from runner.serve import main as serve_main

        return serve_main(argv[1:])
    if argv and argv[0] == "send":  # its client (runner.client)
        from runner.client import main as send_main

        return send_main(argv[1:])
    if argv and argv[0] == "check-wire":  # a shipped wire's fixed slice (runner.wire_check)
        from runner.wire_check import main as check_main

        return check_main(argv[1:])
    if argv and argv[0] == "sweep":  # a grid of runs (runner.sweep)
        from runner.sweep import main as sweep_main

        return sweep_main(argv[1:])
    from runner.cli import run_main

    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main())
