"""A client for ``runner serve``, with retries, back-off and an idempotency key.

    from runner.client import WireClient
    c = WireClient("http://127.0.0.1:8000")
    (msg,) = c.encode(["The Normans gave their name to Normandy."])
    c.answer(msg, reader="gemma3-270m")["answer"]

    python -m runner send http://127.0.0.1:8000 msg.lw --model gemma3-270m [--question "..."]

A request that meets a refused connection, a dropped connection, 429 (after its ``Retry-After``), 502,
503 or 504 is sent again with the same ``Idempotency-Key`` after an exponential back-off with jitter,
so a service restarted mid-request answers it exactly once. Other 4xx are the request's fault: they
raise :class:`ServiceError` at once with the service's error name.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

__all__ = ["ServiceError", "WireClient", "main"]

RETRY_STATUS = (429, 502, 503, 504)


class ServiceError(RuntimeError):
    """The service refused the request (``status``, ``error``: its error name, ``detail``)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


class WireClient:
    """Args:
    url: the service's base URL.
    retries: attempts after the first.
    backoff_s: the first back-off; doubled each time (with up to 50 % jitter), at most ``max_backoff_s``.
    timeout_s: one attempt's socket timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        retries: int = 8,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        timeout_s: float = 300.0,
        seed: int | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: give the service's http:// or https:// address")
        self.url, self.retries, self.backoff = url.rstrip("/"), retries, backoff_s
        self.max_backoff, self.timeout = max_backoff_s, timeout_s
        self._rng = random.Random(seed)
        self.attempts = 0  # every attempt made (for load tests: retries = attempts - requests)

    def _post(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        data = json.dumps(body).encode()
        wait = self.backoff
        for attempt in range(self.retries + 1):
            self.attempts += 1
            req = urllib.request.Request(
                self.url + path,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    out: dict[str, Any] = json.loads(resp.read())
                    return out
            except urllib.error.HTTPError as e:
                try:
                    err = json.loads(e.read())
                except (json.JSONDecodeError, OSError):
                    err = {"error": "HTTPError", "detail": str(e)}
                if e.code not in RETRY_STATUS or attempt == self.retries:
                    raise ServiceError(e.code, str(err.get("error")), str(err.get("detail"))) from None
                after = e.headers.get("Retry-After")
                pause = float(after) if after and after.isdigit() else wait
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError) as e:
                if attempt == self.retries:
                    raise ConnectionError(
                        f"{self.url}{path}: no answer after {attempt + 1} attempts ({e})"
                    ) from e
                pause = wait
            time.sleep(pause * (1 + 0.5 * self._rng.random()))
            wait = min(wait * 2, self.max_backoff)
        raise AssertionError("unreachable")

    def answer(
        self,
        message: bytes,
        *,
        reader: str,
        question: str = "",
        max_new_tokens: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """The service's answer to one message: ``{"answer", "reader", "message_bytes", "timings", ...}``."""
        body: dict[str, Any] = {
            "message": base64.b64encode(message).decode(),
            "reader": reader,
            "question": question,
        }
        if max_new_tokens is not None:
            body["max_new_tokens"] = max_new_tokens
        return self._post("/v1/answer", body, idempotency_key or uuid.uuid4().hex)

    def encode(self, texts: list[str]) -> list[bytes]:
        out = self._post("/v1/encode", {"texts": list(texts)}, uuid.uuid4().hex)
        return [base64.b64decode(m) for m in out["messages"]]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=self.timeout) as resp:
                return bool(json.loads(resp.read()).get("ready"))
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError):
            return False


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m runner send",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the service, e.g. http://127.0.0.1:8000")
    p.add_argument("message", type=Path, help="message file ('-' reads stdin)")
    p.add_argument("--model", required=True, help="the reader that answers")
    p.add_argument("--question", default="", help="the question, in plain text (compress = 'context')")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--retries", type=int, default=8)
    args = p.parse_args(argv)
    from runner.wire_cli import MAX_MESSAGE_BYTES, _read_capped

    try:
        msg = _read_capped(args.message, MAX_MESSAGE_BYTES, "a message")
        out = WireClient(args.url, retries=args.retries).answer(
            msg, reader=args.model, question=args.question, max_new_tokens=args.max_new_tokens
        )
    except (ServiceError, ConnectionError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out["answer"])
    return 0
