"""The receiver service's HTTP pieces: its Prometheus metrics, the capped body, the request's fields."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import JSONResponse

from latentwire_core.logs import get_logger
from runner.receiver import AnswerRequest

__all__ = ["BodyTooLarge", "Metrics", "answer_request", "error_response", "read_body"]

log = get_logger("runner.serve")


class BodyTooLarge(ValueError):
    pass


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "latentwire_requests", "Requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.errors = Counter(
            "latentwire_errors", "Refused or failed requests by error kind", ["kind"], registry=r
        )
        self.queue_depth = Gauge("latentwire_queue_depth", "Jobs waiting for a batch", registry=r)
        self.in_flight = Gauge("latentwire_in_flight", "Jobs in the running batch", registry=r)
        self.batch_size = Histogram(
            "latentwire_batch_size", "Jobs per batch", ["kind"], buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
        self.latency = Histogram(
            "latentwire_latency_seconds", "Request latency", ["endpoint"], buckets=buckets, registry=r
        )
        self.queue_wait = Histogram(
            "latentwire_queue_seconds", "Time waiting for a batch", buckets=buckets, registry=r
        )


def error_response(
    metrics: Metrics, endpoint: str, status: int, exc: BaseException | str, detail: str = ""
) -> JSONResponse:
    kind = exc if isinstance(exc, str) else type(exc).__name__
    metrics.errors.labels(kind=kind).inc()
    metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
    text = detail or (str(exc) if not isinstance(exc, str) else kind)
    log.info("request_refused", endpoint=endpoint, status=status, error=kind, detail=text[:300])
    return JSONResponse({"error": kind, "detail": text}, status_code=status)


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refused (BodyTooLarge) by its Content-Length before reading, or as soon as it passes ``cap``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ValueError(f"Content-Length {declared!r} is not a number")
        if int(declared) > cap:
            raise BodyTooLarge(f"the body is {declared} bytes, over the {cap}-byte cap")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(f"the body passed the {cap}-byte cap while being read")
        chunks.append(chunk)
    return b"".join(chunks)


def answer_request(body: bytes, request: Request) -> AnswerRequest:
    """The request's fields from JSON or from a raw message with query parameters (ValueError names the field)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype == "application/octet-stream":
        fields: dict[str, Any] = dict(request.query_params)
        message = body
    elif ctype in ("application/json", ""):
        try:
            fields = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"the body is not JSON ({e})") from None
        if not isinstance(fields, dict):
            raise ValueError("the body must be a JSON object")
        if not isinstance(fields.get("message"), str):
            raise ValueError("'message' (base64 text) is missing")
        try:
            message = base64.b64decode(fields["message"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("'message' is not valid base64") from None
    else:
        raise ValueError(f"Content-Type {ctype!r}: send application/json or application/octet-stream")
    reader = fields.get("reader")
    if not isinstance(reader, str) or not reader:
        raise ValueError("'reader' is missing")
    question = fields.get("question", "")
    if not isinstance(question, str):
        raise ValueError("'question' must be text")
    limit = fields.get("max_new_tokens")
    if limit is not None:
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            raise ValueError(f"'max_new_tokens' must be an integer, got {limit!r}") from None
    return AnswerRequest(message=message, reader=reader, question=question, max_new_tokens=limit)
