"""The receiver service (``runner serve``) on a real uvicorn server over loopback, with a tiny trained wire."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from experiments import TALK, experiment
from latentwire_hf.data import load_train_eval
from runner.__main__ import main
from runner.batching import IdempotencyStore, MicroBatcher, QueueFull
from runner.client import ServiceError, WireClient
from runner.receiver import AnswerRequest, Receiver
from runner.serve import ServeSettings, create_app


@pytest.fixture(scope="module")
def wire_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("serve")
    p = experiment(tmp, "content", **TALK)
    assert main([str(p), "--runs-dir", str(tmp / "runs")]) == 0
    return tmp / "runs" / "talk"


@pytest.fixture(scope="module")
def questions(data_dir: Path) -> list[tuple[str, str]]:
    _, evaluation, _ = load_train_eval("squad", data_dir=data_dir, train_limit=16, eval_limit=6, seed=0)
    return [(e.context, e.question) for e in evaluation]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """The app on a real uvicorn server in a thread (loopback)."""

    def __init__(self, receiver: Receiver, settings: ServeSettings) -> None:
        import uvicorn

        self.app = create_app(receiver, settings)
        self.port = _port()
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.time() + 120
        while not WireClient(self.url, retries=0).ready():
            assert time.time() < deadline, "the service did not become ready"
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


@pytest.fixture(scope="module")
def receiver(wire_dir: Path) -> Receiver:
    r = Receiver(wire_dir)
    r.load()
    return r


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    req = urllib.request.Request(
        url, data=body, method="POST", headers=headers or {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def _answer_body(msg: bytes, reader: str, question: str) -> bytes:
    return json.dumps(
        {"message": base64.b64encode(msg).decode(), "reader": reader, "question": question}
    ).encode()


def test_the_service_answers_as_the_offline_path_batched_or_not(
    receiver: Receiver, questions: list[tuple[str, str]]
) -> None:
    contexts = [c for c, _ in questions]
    offline_msgs = receiver.encode(contexts)
    with Served(receiver, ServeSettings(max_batch=4, max_wait_ms=200)) as s:
        c = WireClient(s.url)
        assert json.loads(urllib.request.urlopen(s.url + "/healthz").read()) == {"status": "ok"}
        assert c.encode(contexts) == offline_msgs  # the sender side gives the same bytes
        jobs = [
            (m, r, q)
            for m, (_, q) in zip(offline_msgs, questions, strict=True)
            for r in receiver.reader_names
        ]
        with ThreadPoolExecutor(len(jobs)) as pool:  # all at once: they share batches
            got = list(pool.map(lambda j: c.answer(j[0], reader=j[1], question=j[2]), jobs))
        assert max(g["batch_size"] for g in got) > 1
        for (m, r, q), g in zip(jobs, got, strict=True):
            (want,) = receiver.answer([AnswerRequest(m, r, q)])  # unbatched, offline
            assert g["answer"] == want and g["message_bytes"] == len(m)
        # the raw message with query parameters answers the same
        m, r, q = jobs[0]
        query = urllib.parse.urlencode({"reader": r, "question": q})
        status, out, _ = _post(f"{s.url}/v1/answer?{query}", m, {"Content-Type": "application/octet-stream"})
        assert status == 200 and out["answer"] == got[0]["answer"]
        metrics = urllib.request.urlopen(s.url + "/metrics").read().decode()
        assert 'latentwire_requests_total{endpoint="answer",status="200"}' in metrics
        assert "latentwire_batch_size_bucket" in metrics and "latentwire_latency_seconds_bucket" in metrics


def test_refusals_by_name(receiver: Receiver, questions: list[tuple[str, str]]) -> None:
    from latentwire_core.message import HEADER_BYTES

    (msg,) = receiver.encode([questions[0][0]])
    reader, q = receiver.reader_names[0], questions[0][1]
    bad_crc = bytearray(msg)
    bad_crc[HEADER_BYTES] ^= 0x10
    foreign = bytearray(msg)
    foreign[12] ^= 0xFF  # another encoder's fingerprint
    import zlib

    foreign[-4:] = zlib.crc32(bytes(foreign[:-4])).to_bytes(4, "little")
    with Served(receiver, ServeSettings(max_body_bytes=4096)) as s:
        url = s.url + "/v1/answer"
        cases = [
            (_answer_body(bytes(bad_crc), reader, q), 400, "ChecksumMismatch"),
            (_answer_body(msg[:20], reader, q), 400, "TruncatedMessage"),
            (_answer_body(b"XXXX" + msg[4:], reader, q), 400, "BadMagic"),
            (_answer_body(bytes(foreign), reader, q), 400, "FingerprintMismatch"),
            (_answer_body(msg, "qwen-9000", q), 404, "UnknownReaderError"),
            (_answer_body(msg, reader, ""), 422, "InvalidRequest"),  # a context wire needs its question
            (b'{"message": "%%%", "reader": "x"}', 422, "InvalidRequest"),
            (b"not json", 422, "InvalidRequest"),
            (b"x" * 5000, 413, "BodyTooLarge"),
        ]
        for body, status, name in cases:
            got, out, _ = _post(url, body)
            assert (got, out["error"]) == (status, name), (name, out)
        # a chunked body (no Content-Length) is cut off at the cap too
        conn = __import__("http.client").client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        conn.putrequest("POST", "/v1/answer")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for _ in range(3):
            conn.send(b"800\r\n" + b"x" * 0x800 + b"\r\n")
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 413 and json.loads(resp.read())["error"] == "BodyTooLarge"
        # the client raises the service's error name for a request's own fault, without retrying
        c = WireClient(s.url, retries=3)
        with pytest.raises(ServiceError, match="ChecksumMismatch"):
            c.answer(bytes(bad_crc), reader=reader, question=q)
        assert c.attempts == 1
        # still serving
        assert (
            c.answer(msg, reader=reader, question=q)["answer"]
            == receiver.answer([AnswerRequest(msg, reader, q)])[0]
        )
        metrics = urllib.request.urlopen(s.url + "/metrics").read().decode()
        assert 'latentwire_errors_total{kind="ChecksumMismatch"}' in metrics


def test_a_full_queue_answers_429_and_a_key_is_answered_once(
    receiver: Receiver, questions: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    (msg,) = receiver.encode([questions[0][0]])
    reader, q = receiver.reader_names[0], questions[0][1]
    gate, calls = threading.Event(), []
    real = receiver.run_batch

    def held(key: Any, payloads: Any) -> Any:
        calls.append(len(payloads))
        gate.wait(60)
        return real(key, payloads)

    monkeypatch.setattr(receiver, "run_batch", held)
    with Served(receiver, ServeSettings(max_batch=1, max_wait_ms=0, max_queue=1)) as s:
        body = _answer_body(msg, reader, q)
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(
                _post,
                s.url + "/v1/answer",
                body,
                {"Content-Type": "application/json", "Idempotency-Key": "k1"},
            )
            while not calls:  # the first is in the (held) batch
                time.sleep(0.01)
            second = pool.submit(_post, s.url + "/v1/answer", body)  # waits in the queue
            while s.app.state.batcher.depth < 1:
                time.sleep(0.01)
            status, out, headers = _post(s.url + "/v1/answer", body)  # one too many
            assert status == 429 and out["error"] == "QueueFull" and headers["Retry-After"] == "1"
            again = pool.submit(
                _post,
                s.url + "/v1/answer",
                body,
                {"Content-Type": "application/json", "Idempotency-Key": "k1"},
            )
            gate.set()
            a, b, c = first.result(), second.result(), again.result()
        assert a[0] == b[0] == c[0] == 200
        assert c[1]["replayed"] is True and c[1]["answer"] == a[1]["answer"]  # the same key: answered once
        assert sum(calls) == 2
        other = _answer_body(msg, reader, q + "?")
        status, out, _ = _post(
            s.url + "/v1/answer", other, {"Content-Type": "application/json", "Idempotency-Key": "k1"}
        )
        assert status == 422 and out["error"] == "IdempotencyKeyReused"


def test_the_batcher_groups_by_key_refuses_when_full_and_drains() -> None:
    seen: list[tuple[Any, list[int]]] = []

    def run(key: Any, payloads: Any) -> list[int]:
        seen.append((key, list(payloads)))
        return [p * 10 for p in payloads]

    async def go() -> None:
        b = MicroBatcher(run, max_batch=8, max_wait_ms=50, max_queue=5)
        b.start()
        jobs = [await b.submit("a" if i % 2 else "b", i) for i in range(5)]
        with pytest.raises(QueueFull):
            await b.submit("a", 99)
        await b.drain()  # finishes the five before stopping
        assert [j.future.result() for j in jobs] == [0, 10, 20, 30, 40]
        assert sorted(k for k, _ in seen) == ["a", "b"] and sorted(len(p) for _, p in seen) == [2, 3]

    asyncio.run(go())
    store = IdempotencyStore(size=2)

    async def keys() -> None:
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(3)]
        for i, f in enumerate(futs):
            store.put(f"k{i}", "d", f)
        assert store.get("k0", "d") is None and store.get("k2", "d") is futs[2]  # the oldest forgotten
        with pytest.raises(ValueError, match="different request"):
            store.get("k2", "other")

    asyncio.run(keys())


def _serve_process(wire: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", str(wire), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_sigterm_finishes_in_flight_work_and_the_client_waits_for_a_starting_service(
    wire_dir: Path, receiver: Receiver, questions: list[tuple[str, str]]
) -> None:
    (msg,) = receiver.encode([questions[0][0]])
    reader, q = receiver.reader_names[0], questions[0][1]
    want = receiver.answer([AnswerRequest(msg, reader, q)])[0]
    port = _port()
    proc = _serve_process(wire_dir, port, "--max-wait-ms", "1500", "--max-batch", "64")
    try:
        c = WireClient(f"http://127.0.0.1:{port}", retries=40, backoff_s=0.1, max_backoff_s=1.0)
        # sent before the process listens: refused connections and 503 NotReady are retried
        assert c.answer(msg, reader=reader, question=q)["answer"] == want
        assert c.attempts > 1
        with ThreadPoolExecutor(6) as pool:
            futs = [
                pool.submit(WireClient(c.url, retries=0).answer, msg, reader=reader, question=q)
                for _ in range(6)
            ]
            time.sleep(0.5)  # they wait for the batch (1.5 s)
            proc.send_signal(signal.SIGTERM)
            answers = [f.result(timeout=120)["answer"] for f in futs]
        assert answers == [want] * 6  # every request in flight was answered
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
        with pytest.raises(ConnectionError):
            WireClient(c.url, retries=0).answer(msg, reader=reader, question=q)
        logs = [json.loads(line) for line in proc.stderr.read().decode().splitlines() if line.startswith("{")]
        events = [e["event"] for e in logs]
        assert "service_stopping" in events and "service_stopped" in events and "answered" in events
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_flags_and_wires_are_refused_in_one_line(wire_dir: Path, tmp_path: Path) -> None:
    for args, needle in [
        ([str(tmp_path)], b"wire.json"),
        ([str(wire_dir), "--readers", "qwen-9000"], b"its readers"),
        ([str(wire_dir), "--max-batch", "0"], b"must be positive"),
        ([str(wire_dir), "--port", "70000"], b"not a port"),
    ]:
        out = subprocess.run(
            [sys.executable, "-m", "runner", "serve", *args], capture_output=True, timeout=120
        )
        assert out.returncode == 2 and needle in out.stderr, out.stderr[-500:]


def test_the_load_benchmark_writes_its_figures(
    wire_dir: Path, questions: list[tuple[str, str]], tmp_path: Path
) -> None:
    """A short run of benchmarks/serve_load.py (every phase, seconds instead of minutes)."""
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": c, "question": q}) + "\n" for c, q in questions))
    out = tmp_path / "serve"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(repo / "benchmarks" / "serve_load.py"), str(wire_dir), "--texts", str(texts),
         "--levels", "1,4", "--seconds", "2", "--mixed-seconds", "3", "--kill-requests", "30",
         "--kill-after", "1", "--soak-seconds", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((out / "serve_load.json").read_text())
    assert [r["concurrency"] for r in rep["levels"]] == [1, 4]
    assert all(r["answered"] > 0 and r["differing"] == 0 and not r["errors"] for r in rep["levels"])
    assert rep["mixed"]["refused_otherwise"] == 0 and rep["mixed"]["up_after"]
    assert rep["kill"]["lost"] == 0 and rep["kill"]["differing"] == 0
    assert rep["soak"]["rss_end_mib"] > 0
    assert (out / "serve_load.md").is_file() and (out / "serve_load.png").is_file()
