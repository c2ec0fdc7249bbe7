"""Load and fault test of ``runner serve`` over loopback: throughput, latency, refusals, a kill -9, a soak.

    .venv/bin/python benchmarks/serve_load.py wires/sst2-quickstart --texts texts.jsonl \\
        [--levels 1,4,16,64] [--seconds 60] [--soak-seconds 600] [--out results/serve]

Starts the service in a subprocess (``python -m runner serve``, 127.0.0.1), then:

1. closed-loop load at each concurrency level for ``--seconds``: throughput, p50/p95/p99 latency, errors,
   mean batch size; every answer compared with the offline answer (``Receiver.answer``, batch of one)
   of the same message: differing and lost answers counted;
2. mixed traffic at concurrency 16: 10 % of requests malformed, forged (bad CRC, foreign fingerprint),
   oversized or for an unknown reader: each must be refused with its 4xx and error name, the rest
   answered, the service still up;
3. kill -9 of the service mid-load and a restart: the clients retry with their idempotency keys until
   every request is answered; lost (never answered) and differing answers counted;
4. a soak at concurrency 16 for ``--soak-seconds``: resident memory after warm-up and at the end.

Every loop is bounded in count and time. Writes ``serve_load.json`` / ``serve_load.md`` and a latency
plot to ``--out`` with the machine and commit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


class Service:
    def __init__(self, wire: Path, port: int, args: list[str], log: Path) -> None:
        self.wire, self.port, self.args, self.log = wire, port, args, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 600) -> float:
        t0 = time.perf_counter()
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        cmd = [sys.executable, "-m", "runner", "serve", str(self.wire), "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"), env=env)
        from runner.client import WireClient

        c = WireClient(self.url, retries=0, timeout_s=5)
        while not c.ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}: see {self.log}")
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"the service was not ready in {timeout} s")
            time.sleep(0.2)
        return time.perf_counter() - t0

    def rss_mib(self) -> float:
        import psutil

        assert self.proc is not None
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=300)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def closed_loop(
    url: str,
    jobs: list[tuple[bytes, str, str, str]],
    concurrency: int,
    seconds: float,
    *,
    bad: list[tuple[bytes, int, str]] | None = None,
    bad_share: float = 0.0,
    retries: int = 0,
    max_requests: int = 1_000_000,
) -> dict[str, Any]:
    """``concurrency`` workers send requests back to back for ``seconds`` (or ``max_requests`` in all).
    ``jobs``: (message, reader, question, offline answer). ``bad``: (body, status, error name) sent with
    probability ``bad_share``."""
    from runner.client import ServiceError, WireClient

    lock = threading.Lock()
    stats: dict[str, Any] = {
        "latency": [],
        "batch": [],
        "ok": 0,
        "differ": 0,
        "errors": {},
        "refused_right": 0,
        "refused_wrong": 0,
    }
    sent = [0]
    deadline = time.perf_counter() + seconds

    def worker(w: int) -> None:
        rng = random.Random(w)
        client = WireClient(url, retries=retries, backoff_s=0.05, max_backoff_s=1.0, timeout_s=120, seed=w)
        while time.perf_counter() < deadline:
            with lock:
                if sent[0] >= max_requests:
                    return
                sent[0] += 1
            if bad and rng.random() < bad_share:
                body, status, name = rng.choice(bad)
                req = urllib.request.Request(
                    url + "/v1/answer", data=body, method="POST", headers={"Content-Type": "application/json"}
                )
                try:
                    urllib.request.urlopen(req, timeout=120).read()
                    got = (200, "")
                except urllib.error.HTTPError as e:
                    got = (e.code, json.loads(e.read()).get("error", ""))
                with lock:
                    stats["refused_right" if got == (status, name) else "refused_wrong"] += 1
                continue
            msg, reader, question, want = jobs[rng.randrange(len(jobs))]
            t0 = time.perf_counter()
            try:
                out = client.answer(msg, reader=reader, question=question, idempotency_key=uuid.uuid4().hex)
            except (ServiceError, ConnectionError) as e:
                kind = getattr(e, "error", type(e).__name__)
                with lock:
                    stats["errors"][kind] = stats["errors"].get(kind, 0) + 1
                continue
            dt = time.perf_counter() - t0
            with lock:
                stats["latency"].append(dt)
                stats["batch"].append(out.get("batch_size") or 1)
                stats["ok"] += 1
                stats["differ"] += out["answer"] != want

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 600)
    wall = time.perf_counter() - t0
    lat = stats.pop("latency")
    batch = stats.pop("batch")
    return {
        "concurrency": concurrency,
        "seconds": round(wall, 1),
        "answered": stats["ok"],
        "throughput_per_s": round(stats["ok"] / wall, 3),
        "p50_ms": round(_pct(lat, 0.5) * 1000, 1),
        "p95_ms": round(_pct(lat, 0.95) * 1000, 1),
        "p99_ms": round(_pct(lat, 0.99) * 1000, 1),
        "mean_batch": round(sum(batch) / max(len(batch), 1), 2),
        "differing": stats["differ"],
        "errors": stats["errors"],
        "refused_as_expected": stats["refused_right"],
        "refused_otherwise": stats["refused_wrong"],
    }


def kill_and_restart(
    service: Service, jobs: list[tuple[bytes, str, str, str]], n: int, concurrency: int, kill_after: float
) -> dict[str, Any]:
    """``n`` requests, each with its own idempotency key and retries; the service is killed (-9) after
    ``kill_after`` seconds and restarted. Every request must end with one answer, equal to the offline one."""
    from runner.client import WireClient

    answers: dict[int, str | None] = dict.fromkeys(range(n))
    errors: dict[int, str] = {}
    lock, nxt = threading.Lock(), [0]

    def worker(w: int) -> None:
        client = WireClient(service.url, retries=200, backoff_s=0.1, max_backoff_s=2.0, timeout_s=120, seed=w)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            msg, reader, question, _ = jobs[i % len(jobs)]
            try:
                answers[i] = client.answer(msg, reader=reader, question=question, idempotency_key=f"req-{i}")[
                    "answer"
                ]
            except Exception as e:  # counted as lost
                errors[i] = f"{type(e).__name__}: {e}"[:200]

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(kill_after)
    answered_before = sum(a is not None for a in answers.values())
    service.kill9()
    killed_at = time.perf_counter() - t0
    restart_s = service.start()
    for t in threads:
        t.join(timeout=1800)
    lost = [i for i, a in answers.items() if a is None]
    differ = [i for i, a in answers.items() if a is not None and a != jobs[i % len(jobs)][3]]
    return {
        "requests": n,
        "concurrency": concurrency,
        "killed_after_s": round(killed_at, 1),
        "answered_before_kill": answered_before,
        "restart_s": round(restart_s, 1),
        "lost": len(lost),
        "differing": len(differ),
        "errors": list(errors.values())[:5],
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def bad_requests(msg: bytes, reader: str, question: str, max_body: int) -> list[tuple[bytes, int, str]]:
    def body(m: bytes, r: str = reader) -> bytes:
        return json.dumps(
            {"message": base64.b64encode(m).decode(), "reader": r, "question": question}
        ).encode()

    crc = bytearray(msg)
    crc[-5] ^= 0x01
    foreign = bytearray(msg)
    foreign[12] ^= 0xFF
    foreign[-4:] = zlib.crc32(bytes(foreign[:-4])).to_bytes(4, "little")
    return [
        (body(msg[:20]), 400, "TruncatedMessage"),
        (body(bytes(crc)), 400, "ChecksumMismatch"),
        (body(bytes(foreign)), 400, "FingerprintMismatch"),
        (body(b"NOPE" + msg[4:]), 400, "BadMagic"),
        (body(msg, "no-such-reader"), 404, "UnknownReaderError"),
        (b"{" * 10 + b"x" * (max_body + 10), 413, "BodyTooLarge"),
        (b'{"message": "!!", "reader": "x"}', 422, "InvalidRequest"),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("wire", type=Path)
    p.add_argument(
        "--texts", type=Path, required=True, help='JSONL of {"text", "question"?}: the messages sent'
    )
    p.add_argument("--n-texts", type=int, default=32)
    p.add_argument("--levels", default="1,4,16,64")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--mixed-seconds", type=float, default=60)
    p.add_argument("--kill-requests", type=int, default=400)
    p.add_argument("--kill-after", type=float, default=10)
    p.add_argument("--soak-seconds", type=float, default=600)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=10)
    p.add_argument("--max-queue", type=int, default=256)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "serve")
    args = p.parse_args()
    from runner.receiver import AnswerRequest, Receiver

    items = [json.loads(line) for line in args.texts.read_text().splitlines() if line.strip()][: args.n_texts]
    offline = Receiver(args.wire)
    offline.load()
    msgs = offline.encode([it["text"] for it in items])
    jobs = []
    for m, it in zip(msgs, items, strict=True):
        for r in offline.reader_names:
            (want,) = offline.answer([AnswerRequest(m, r, it.get("question", ""))])
            jobs.append((m, r, it.get("question", ""), want))
    del offline
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "service.log"
    log.unlink(missing_ok=True)
    max_body = 1 << 16
    flags = [
        "--max-batch",
        str(args.max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--max-queue",
        str(args.max_queue),
        "--max-body-bytes",
        str(max_body),
    ]
    service = Service(args.wire, _port(), flags, log)
    report: dict[str, Any] = {
        "wire": str(args.wire),
        "device": f"CPU ({os.cpu_count()} cores, {platform.platform()})",
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {
            "max_batch": args.max_batch,
            "max_wait_ms": args.max_wait_ms,
            "max_queue": args.max_queue,
        },
        "messages": len(msgs),
        "message_bytes": sorted({len(m) for m in msgs}),
        "readers": sorted({j[1] for j in jobs}),
    }
    report["start_s"] = round(service.start(), 1)
    closed_loop(service.url, jobs, 4, 5)  # warm-up
    report["levels"] = []
    for c in [int(x) for x in args.levels.split(",")]:
        r = closed_loop(service.url, jobs, c, args.seconds)
        print(json.dumps(r), flush=True)
        report["levels"].append(r)
    bad = bad_requests(msgs[0], jobs[0][1], jobs[0][2], max_body)
    report["mixed"] = closed_loop(service.url, jobs, 16, args.mixed_seconds, bad=bad, bad_share=0.1)
    print(json.dumps(report["mixed"]), flush=True)
    with urllib.request.urlopen(service.url + "/healthz", timeout=30) as r:
        report["mixed"]["up_after"] = json.loads(r.read())["status"] == "ok"
    report["kill"] = kill_and_restart(service, jobs, args.kill_requests, 16, args.kill_after)
    print(json.dumps(report["kill"]), flush=True)
    if args.soak_seconds > 0:
        closed_loop(service.url, jobs, 16, min(30.0, args.soak_seconds / 10))  # warm-up
        rss0 = service.rss_mib()
        soak = closed_loop(service.url, jobs, 16, args.soak_seconds)
        rss1 = service.rss_mib()
        soak.update(
            rss_after_warmup_mib=round(rss0, 1),
            rss_end_mib=round(rss1, 1),
            rss_growth=round(rss1 / rss0 - 1, 4),
        )
        report["soak"] = soak
        print(json.dumps(soak), flush=True)
    report["sigterm_exit"] = service.stop()
    seq = next((r for r in report["levels"] if r["concurrency"] == 1), None)
    c16 = next((r for r in report["levels"] if r["concurrency"] == 16), None)
    if seq and c16:
        report["speedup_16_vs_sequential"] = round(c16["throughput_per_s"] / seq["throughput_per_s"], 2)
    (args.out / "serve_load.json").write_text(json.dumps(report, indent=1) + "\n")
    _write_md(report, args.out)
    print(f"wrote {args.out / 'serve_load.json'}")
    return 0


def _write_md(rep: dict[str, Any], out: Path) -> None:
    lines = [
        "# runner serve: load and fault test",
        "",
        f"Wire `{rep['wire']}` (readers {', '.join(rep['readers'])}; {rep['messages']} messages of {rep['message_bytes']} bytes), "
        f"{rep['device']}, commit `{rep['commit'][:10]}`, {rep['date']}. Settings {rep['settings']}. "
        "Written by `benchmarks/serve_load.py`: every figure below is in `serve_load.json`.",
        "",
        "| concurrency | s | answered | req/s | p50 ms | p95 ms | p99 ms | mean batch | differing | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rep["levels"]:
        lines.append(
            f"| {r['concurrency']} | {r['seconds']} | {r['answered']} | {r['throughput_per_s']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['mean_batch']} | {r['differing']} | {r['errors'] or 0} |"
        )
    m, k = rep["mixed"], rep["kill"]
    lines += [
        "",
        f"Throughput at concurrency 16 / sequential (concurrency 1): **{rep.get('speedup_16_vs_sequential', '–')}×**.",
        "",
        f"Mixed traffic (10 % bad requests, concurrency 16, {m['seconds']} s): {m['refused_as_expected']} refused with the expected "
        f"status and error name, {m['refused_otherwise']} otherwise; {m['answered']} good requests answered, {m['differing']} differing, "
        f"errors {m['errors'] or 0}; service up after: {m.get('up_after')}.",
        "",
        f"kill -9 after {k['killed_after_s']} s of {k['requests']} requests at concurrency {k['concurrency']} ({k['answered_before_kill']} answered "
        f"before), restart {k['restart_s']} s: **lost {k['lost']}**, differing {k['differing']}.",
    ]
    if "soak" in rep:
        s = rep["soak"]
        lines += [
            "",
            f"Soak, concurrency 16, {s['seconds']} s: {s['answered']} answered, p99 {s['p99_ms']} ms, differing {s['differing']}; resident memory "
            f"{s['rss_after_warmup_mib']} MiB after warm-up, {s['rss_end_mib']} MiB at the end ({s['rss_growth']:+.1%}).",
        ]
    lines += [
        "",
        f"SIGTERM at the end: exit {rep['sigterm_exit']} (uvicorn re-raises the signal after finishing: -15).",
    ]
    (out / "serve_load.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        cs = [r["concurrency"] for r in rep["levels"]]
        ax[0].plot(cs, [r["throughput_per_s"] for r in rep["levels"]], "o-")
        ax[0].set(xscale="log", xlabel="concurrency", ylabel="answers / s", title="throughput")
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            ax[1].plot(cs, [r[q] for r in rep["levels"]], "o-", label=q[:3])
        ax[1].set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms", title="latency")
        ax[1].legend()
        fig.tight_layout()
        fig.savefig(out / "serve_load.png", dpi=120)
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
