"""ASGI middleware: request ids, body-size limit, the one event per ``/v1`` request,
access log and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quanguard.api.recording import RequestRecorder, recorded_path
from quanguard.errors import classify
from quanguard.gate import reset_recorded, stop_tracking, was_recorded
from quanguard.logs import REQUEST_ID
from quanguard.metrics import Metrics

__all__ = ["RequestMiddleware", "jsonable"]

_log = logging.getLogger("quanguard.http")


class RequestMiddleware:
    """Give every request an id (``X-Request-ID``), cap its body, log and count it; make
    every ``/v1`` request leave exactly one audit event (``quanguard.api.recording``):
    when the response starts and no event was committed for the request, the recorder
    writes one; if it cannot, the response is replaced by 503."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int, body_timeout: float = 15.0,
                 recorder: RequestRecorder | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.body_timeout = body_timeout
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        start = time.perf_counter()
        status_holder = {"status": 500}
        recorder = self.recorder if recorded_path(str(scope.get("path", ""))) else None
        tracking = reset_recorded(scope) if recorder is not None else None
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's answer was replaced: its record could not be written
            if message["type"] == "http.response.start":
                if recorder is not None and not was_recorded():
                    try:
                        await run_in_threadpool(recorder.record, scope, int(message["status"]))
                    except Exception as exc:  # noqa: BLE001 - any failure to record fails the request
                        _log.error("the audit event of %s %s could not be written; answering 503",
                                   scope["method"], scope.get("path"), exc_info=exc)
                        replaced = True
                        status_holder["status"] = 503
                        status_holder["started"] = 1
                        error = {"kind": "unavailable",
                                 "message": "the audit trail could not record this request; retry shortly"}
                        for part in self._json_messages(503, error, rid):
                            await send(part)
                        return
                status_holder["status"] = message["status"]
                status_holder["started"] = 1
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            if recorder is not None and _nul_in_url(scope):
                # no store can hold NUL in text (PostgreSQL refuses it): refused, recorded
                message = "the URL holds NUL (%00) in its path or query; send text"
                await self._send_json(send_wrapper, 400, {"kind": "invalid", "message": message}, rid)
                return
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._reject_too_large(send_wrapper, rid)
                return
            received = 0
            body_done = False

            async def limited_receive() -> Message:
                nonlocal received, body_done
                if body_done:
                    # After the body, receive() only waits for a disconnect: no deadline.
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), self.body_timeout)
                except TimeoutError:
                    raise _BodyStalled from None
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise _BodyTooLarge
                    body_done = not message.get("more_body", False)
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLarge:
                await self._reject_too_large(send_wrapper, rid)
            except _BodyStalled:
                if not status_holder.get("started"):
                    message = f"request body stalled for more than {self.body_timeout:g} s"
                    await self._send_json(send_wrapper, 408, {"kind": "invalid", "message": message}, rid)
            except Exception as exc:
                if status_holder.get("started"):
                    raise
                info = classify(exc)
                if info is None:
                    _log.error("unhandled error on %s %s", scope["method"], scope.get("path"), exc_info=exc)
                    await self._send_json(
                        send_wrapper, 500,
                        {"kind": "internal", "message": "internal error; quote the request id to the operators"},
                        rid,
                    )
                else:
                    await self._send_json(
                        send_wrapper, info.status,
                        {"kind": info.kind, "message": info.message, **jsonable(info.details)}, rid,
                    )
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status_holder["status"])).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            _log.info(
                "request",
                extra={
                    "route": template,
                    "method": scope["method"],
                    "status": status_holder["status"],
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
            REQUEST_ID.reset(token)
            if tracking is not None:
                stop_tracking(tracking)

    async def _reject_too_large(self, send: Send, rid: str) -> None:
        message = f"request body exceeds the limit of {self.max_body} bytes"
        await self._send_json(send, 413, {"kind": "too_large", "message": message}, rid)

    @classmethod
    async def _send_json(cls, send: Send, status: int, error: Mapping[str, object], rid: str) -> None:
        start, body = cls._json_messages(status, error, rid)
        start["headers"] = start["headers"][:-1]  # send_wrapper adds the request id
        await send(start)
        await send(body)

    @staticmethod
    def _json_messages(status: int, error: Mapping[str, object], rid: str) -> list[Message]:
        body = json_bytes({"error": {**error, "request_id": rid}})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        headers.append((b"x-request-id", rid.encode()))
        return [{"type": "http.response.start", "status": status, "headers": headers},
                {"type": "http.response.body", "body": body}]


def json_bytes(obj: object) -> bytes:
    """An answer's JSON as UTF-8. Text no UTF-8 encoder takes (half a UTF-16 pair quoted
    from the request) is written as its JSON escape: an error answer never fails to encode
    (it would fall back to a plain-text 500 and the request would lose its event)."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "backslashreplace")


def jsonable(details: Mapping[str, object]) -> dict[str, object]:
    """Error details as JSON-safe values (anything else becomes its string)."""
    out: dict[str, object] = {}
    for key, value in details.items():
        if isinstance(value, str | int | float | bool | type(None)):
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, str | int | float | bool) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def _nul_in_url(scope: Scope) -> bool:
    """Whether the request's path or query string spells NUL (decoded path, raw query)."""
    if "\x00" in str(scope.get("path", "")):
        return True
    query: bytes = scope.get("query_string") or b""
    return b"%00" in query or b"\x00" in query


class _BodyTooLarge(Exception):
    pass


class _BodyStalled(Exception):
    pass
