"""``python -m runner serve WIRE``: a receiver (and sender) service for a trained wire.

    python -m runner serve wires/general-4x --port 8000 [--readers gemma3-270m] [--max-batch 8]

Endpoints (JSON unless said):

- ``POST /v1/answer``: a message and a reader -> the reader's answer with timings. The body is JSON
  ``{"message": base64, "reader": ..., "question": ..., "max_new_tokens": ...}``, or the raw message
  (``Content-Type: application/octet-stream``) with ``reader``, ``question``, ``max_new_tokens`` in the
  query string. An ``Idempotency-Key`` header makes a retried request get the first answer.
- ``POST /v1/encode``: ``{"texts": [...]}`` (or ``{"text": ...}``) -> base64 messages and their bytes.
- ``GET /healthz`` (the process is up), ``GET /readyz`` (the readers are loaded), ``GET /metrics``
  (Prometheus: requests, errors by kind, queue depth, batch sizes, latency histograms).

Listens on 127.0.0.1 unless ``--host`` says otherwise. The request body is capped (``Content-Length``
checked before reading, the stream counted while reading); every check of the message format runs
before a request waits, refused with 4xx and the error's name; a full queue answers 429 with
``Retry-After``; a request waits at most ``--timeout-s`` (504); SIGTERM stops taking work and finishes
what is in flight. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import Any

import attrs
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from latentwire_core.logs import get_logger
from runner.batching import IdempotencyStore, MicroBatcher, QueueFull, ShuttingDown
from runner.http_parts import BodyTooLarge, Metrics, answer_request, error_response, read_body
from runner.receiver import Receiver

__all__ = ["ServeSettings", "create_app", "main"]

log = get_logger(__name__)


@attrs.frozen
class ServeSettings:
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_queue: int = 64
    timeout_s: float = 120.0
    max_body_bytes: int = 1 << 20  # a base64 message of a few thousand soft tokens and its question
    max_texts: int = 64  # texts in one encode request
    retry_after_s: int = 1


def create_app(receiver: Receiver, settings: ServeSettings | None = None, *, load: bool = True) -> Starlette:
    """The ASGI app. With ``load`` the readers load in a thread after start-up (``/readyz`` says when)."""
    from latentwire_core.message import MessageError
    from latentwire_hf.pretrained import UnknownReaderError

    s = settings or ServeSettings()
    metrics = Metrics()
    state: dict[str, Any] = {"load_error": None}

    def on_batch(key: Hashable, n: int) -> None:
        metrics.batch_size.labels(kind=str(key[0]) if isinstance(key, tuple) else str(key)).observe(n)

    batcher = MicroBatcher(
        receiver.run_batch,
        max_batch=s.max_batch,
        max_wait_ms=s.max_wait_ms,
        max_queue=s.max_queue,
        on_batch=on_batch,
    )
    idem = IdempotencyStore()

    def refused(endpoint: str, e: QueueFull | ShuttingDown) -> JSONResponse:
        """A job the batcher would not take: 429 with Retry-After when full, 503 when stopping."""
        if isinstance(e, ShuttingDown):
            return error_response(metrics, endpoint, 503, e)
        resp = error_response(metrics, endpoint, 429, e)
        resp.headers["Retry-After"] = str(s.retry_after_s)
        return resp

    async def _await(job: Any) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), s.timeout_s)
        finally:
            metrics.queue_depth.set(batcher.depth)

    async def answer(request: Request) -> Response:
        t0 = time.perf_counter()
        ep = "answer"
        if not receiver.ready:
            return error_response(metrics, ep, 503, "NotReady", "the readers are still loading")
        try:
            body = await read_body(request, s.max_body_bytes)
        except BodyTooLarge as e:
            return error_response(metrics, ep, 413, e)
        except ValueError as e:
            return error_response(metrics, ep, 400, "BadRequest", str(e))
        try:
            req = answer_request(body, request)
            receiver.check(req)
        except MessageError as e:
            return error_response(metrics, ep, 400, e)
        except UnknownReaderError as e:
            return error_response(metrics, ep, 404, e, e.args[0] if e.args else str(e))
        except ValueError as e:
            return error_response(metrics, ep, 422, "InvalidRequest", str(e))
        key = request.headers.get("idempotency-key")
        digest = hashlib.sha256(body + b"\0" + request.url.query.encode()).hexdigest()
        try:
            fut = idem.get(key, digest) if key else None
        except ValueError as e:
            return error_response(metrics, ep, 422, "IdempotencyKeyReused", str(e))
        job = None
        if fut is None:
            try:
                job = await batcher.submit(Receiver.batch_key(req), req)
            except (QueueFull, ShuttingDown) as e:
                return refused(ep, e)
            metrics.queue_depth.set(batcher.depth)
            if key:
                idem.put(key, digest, job.future)
            fut = job.future
        try:
            out = await asyncio.wait_for(asyncio.shield(fut), s.timeout_s)
        except TimeoutError:
            return error_response(metrics, ep, 504, "Timeout", f"no answer within {s.timeout_s} s")
        except Exception as e:  # the batch failed: a fault of the service, not of the request
            log.error("batch_failed", error=type(e).__name__, detail=str(e)[:300])
            return error_response(metrics, ep, 500, e)
        finally:
            metrics.queue_depth.set(batcher.depth)
        total = time.perf_counter() - t0
        timings = {"total_ms": round(total * 1000, 2)}
        if job is not None:
            timings["queue_ms"] = round((job.started_at - job.queued_at) * 1000, 2)
            metrics.queue_wait.observe(max(0.0, job.started_at - job.queued_at))
        metrics.latency.labels(endpoint=ep).observe(total)
        metrics.requests.labels(endpoint=ep, status="200").inc()
        log.info("answered", reader=req.reader, ms=timings["total_ms"], batch=job.batch_size if job else None)
        return JSONResponse(
            {
                "answer": out,
                "reader": req.reader,
                "message_bytes": len(req.message),
                "batch_size": job.batch_size if job is not None else None,
                "replayed": job is None,
                "timings": timings,
            }
        )

    async def encode(request: Request) -> Response:
        t0 = time.perf_counter()
        ep = "encode"
        try:
            body = await read_body(request, s.max_body_bytes)
            fields = json.loads(body)
            texts = (
                fields.get("texts", [fields["text"]] if "text" in fields else None)
                if isinstance(fields, dict)
                else None
            )
            if (
                not isinstance(texts, list)
                or not texts
                or not all(isinstance(t, str) and t.strip() for t in texts)
            ):
                raise ValueError("give 'text' or 'texts': non-empty strings")
            if len(texts) > s.max_texts:
                raise ValueError(f"{len(texts)} texts, over the {s.max_texts} allowed in one request")
        except BodyTooLarge as e:
            return error_response(metrics, ep, 413, e)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            return error_response(metrics, ep, 422, "InvalidRequest", str(e))
        try:
            jobs = [await batcher.submit(("encode",), t) for t in texts]
        except (QueueFull, ShuttingDown) as e:
            return refused(ep, e)
        try:
            messages = [await _await(j) for j in jobs]
        except TimeoutError:
            return error_response(metrics, ep, 504, "Timeout", f"no messages within {s.timeout_s} s")
        except Exception as e:
            return error_response(metrics, ep, 500, e)
        total = time.perf_counter() - t0
        metrics.latency.labels(endpoint=ep).observe(total)
        metrics.requests.labels(endpoint=ep, status="200").inc()
        return JSONResponse(
            {
                "messages": [base64.b64encode(m).decode() for m in messages],
                "bytes": [len(m) for m in messages],
                "fingerprint": receiver.fingerprint,
                "timings": {"total_ms": round(total * 1000, 2)},
            }
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if state["load_error"] is not None:
            return JSONResponse({"ready": False, "error": state["load_error"]}, status_code=503)
        body = {
            "ready": receiver.ready,
            "readers": receiver.reader_names,
            "fingerprint": receiver.fingerprint,
        }
        return JSONResponse(body, status_code=200 if receiver.ready else 503)

    async def metrics_view(request: Request) -> Response:
        metrics.queue_depth.set(batcher.depth)
        metrics.in_flight.set(batcher.in_flight)
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        loader = None
        if load and not receiver.ready:

            def _load() -> None:
                try:
                    receiver.load()
                except Exception as e:  # /readyz reports it; the process stays up for /healthz
                    state["load_error"] = f"{type(e).__name__}: {e}"
                    log.error("load_failed", error=state["load_error"])

            loader = asyncio.get_running_loop().run_in_executor(None, _load)
        log.info("service_started", wire=str(receiver.path), readers=receiver.reader_names)
        try:
            yield
        finally:
            log.info("service_stopping", queued=batcher.depth, in_flight=batcher.in_flight)
            await batcher.drain()  # finish what was taken before stopping
            if loader is not None:
                await loader
            log.info("service_stopped")

    app = Starlette(
        routes=[
            Route("/v1/answer", answer, methods=["POST"]),
            Route("/v1/encode", encode, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_view),
        ],
        lifespan=lifespan,
    )
    app.state.batcher, app.state.metrics, app.state.receiver = batcher, metrics, receiver
    return app


def main(argv: list[str]) -> int:
    defaults = ServeSettings()
    p = argparse.ArgumentParser(
        prog="python -m runner serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("wire", type=Path, help="a saved wire folder (wires/...) or a run folder")
    p.add_argument(
        "--readers", default="", help="comma-separated readers to load (default: all of the wire's)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-batch", type=int, default=defaults.max_batch)
    p.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms)
    p.add_argument("--max-queue", type=int, default=defaults.max_queue)
    p.add_argument("--timeout-s", type=float, default=defaults.timeout_s)
    p.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    p.add_argument("--max-new-tokens", type=int, default=None, help="the most tokens a request may generate")
    p.add_argument(
        "--graceful-s", type=float, default=120.0, help="how long SIGTERM waits for in-flight work"
    )
    args = p.parse_args(argv)
    from latentwire_core.logs import configure_logging

    configure_logging(json_console=True)
    try:
        settings = ServeSettings(
            max_batch=args.max_batch,
            max_wait_ms=args.max_wait_ms,
            max_queue=args.max_queue,
            timeout_s=args.timeout_s,
            max_body_bytes=args.max_body_bytes,
        )
        if (
            min(args.max_batch, args.max_queue, args.max_body_bytes) < 1
            or args.timeout_s <= 0
            or args.max_wait_ms < 0
        ):
            raise ValueError("--max-batch, --max-queue, --max-body-bytes and --timeout-s must be positive")
        if not 0 < args.port < 65536:
            raise ValueError(f"--port {args.port} is not a port number")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "listening_beyond_this_machine", host=args.host, note="the service has no authentication"
            )
        readers = [r.strip() for r in args.readers.split(",") if r.strip()]
        receiver = Receiver(
            args.wire, readers=readers, device=args.device, max_new_tokens=args.max_new_tokens
        )
    except Exception as e:  # a bad flag, a missing or damaged wire, an unknown reader: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2
    import uvicorn

    app = create_app(receiver, settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(args.graceful_s),
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0
