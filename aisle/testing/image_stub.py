"""An OpenAI-compatible image server on loopback, for tests: it draws one fixed image,
describes every image with one fixed text, records each request, and injects faults.

It serves `POST /v1/images/generations` (the image as `b64_json`, or as a `url` under
`GET /v1/files/<n>.png`) and `POST /v1/chat/completions` (the description, for a
vision-language model's requests). Faults are queued with `inject`: a `Fault` from the
chat stub (HTTP status with `Retry-After`, delay, dropped connection) or a `RawReply`
(any status and body, e.g. a 200 that is not JSON); each applies to one request, in
order.

Example:
    >>> import httpx
    >>> with image_stub_server(description="A red scarf.") as stub:
    ...     reply = httpx.post(f"{stub.base_url}/images/generations",
    ...                        json={"model": "m", "prompt": "scarf"}).json()
    >>> base64.b64decode(reply["data"][0]["b64_json"]) == ONE_PIXEL_PNG
    True
    >>> [(r.path, r.body["prompt"]) for r in stub.requests]
    [('/v1/images/generations', 'scarf')]
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from aisle.testing.stub_server import Fault, LoopbackServer

__all__ = ["DEFAULT_DESCRIPTION", "ONE_PIXEL_PNG", "ImageStubServer", "RawReply", "RecordedRequest",
           "image_stub_server"]

ONE_PIXEL_PNG: bytes = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
"""A valid 1x1 RGBA PNG (70 bytes), the stub's default image."""

DEFAULT_DESCRIPTION = "A person in a tweed deerstalker hat and a long camel overcoat."
"""The stub's default answer to every chat completion."""


@dataclass(frozen=True)
class RawReply:
    """An answer sent as written, instead of the normal one.

    Attributes:
        status: the HTTP status.
        body: the body bytes.
        content_type: its `Content-Type`.
        headers: further headers.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received (faulted ones included).

    Attributes:
        method: `GET` or `POST`.
        path: the request path, e.g. `/v1/images/generations`.
        headers: its headers, names lower-cased.
        body: its JSON body (`{}` for none; `{"_raw": text}` when not JSON).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ImageStubServer(LoopbackServer[Fault | RawReply]):
    """The image stub (see the module). Start it with `with` or `start()`.

    Args:
        png: the image every generation returns.
        description: the text every chat completion returns.
        answer_with: how generations return the image: `b64_json`, or a `url` on this
            server (whatever the request asks for).
        revised_prompt: when set, generations return it as `revised_prompt`.
        port: the port to listen on; 0 picks a free one.
    """

    def __init__(self, png: bytes = ONE_PIXEL_PNG, description: str = DEFAULT_DESCRIPTION,
                 *, answer_with: Literal["b64_json", "url"] = "b64_json",
                 revised_prompt: str | None = None, port: int = 0) -> None:
        self.png = png
        self.description = description
        self.answer_with = answer_with
        self.revised_prompt = revised_prompt
        self._requests: list[RecordedRequest] = []
        super().__init__(port)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _generation(self, body: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any]
        if self.answer_with == "url":
            with self._lock:
                number = len(self._requests)
            item = {"url": f"{self.base_url}/files/{number}.png"}
        else:
            item = {"b64_json": base64.b64encode(self.png).decode("ascii")}
        if self.revised_prompt is not None:
            item["revised_prompt"] = self.revised_prompt
        return {"created": int(time.time()), "data": [item]}

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-image-stub", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.description}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": len(self.description.split()),
                      "total_tokens": 1 + len(self.description.split())},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, data: bytes, content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), headers=headers)

            def _headers(self) -> dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def do_GET(self) -> None:
                stub._record(RecordedRequest("GET", self.path, self._headers(), {}))
                if self.path.startswith("/v1/files/") and self.path.endswith(".png"):
                    self._send(200, stub.png, "image/png")
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                if not isinstance(body, dict):
                    body = {"_raw": body}
                stub._record(RecordedRequest("POST", self.path, self._headers(), body))
                if "_raw" in body:
                    self._json(400, {"error": {"message": "request body is not a JSON object"}})
                    return
                fault = stub._next_fault()
                if isinstance(fault, RawReply):
                    self._send(fault.status, fault.body, fault.content_type, fault.headers)
                    return
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.drop:
                        self.close_connection = True
                        return
                    if fault.status is not None:
                        headers = {}
                        if fault.retry_after is not None:
                            headers["Retry-After"] = f"{fault.retry_after:g}"
                        self._json(fault.status, {"error": {
                            "message": f"injected HTTP {fault.status}", "type": "stub"}},
                            headers)
                        return
                if self.path.endswith("/images/generations"):
                    self._json(200, stub._generation(body))
                elif self.path.endswith("/chat/completions"):
                    self._json(200, stub._completion(body))
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

        return Handler


@contextlib.contextmanager
def image_stub_server(png: bytes = ONE_PIXEL_PNG, description: str = DEFAULT_DESCRIPTION, *,
                      answer_with: Literal["b64_json", "url"] = "b64_json",
                      revised_prompt: str | None = None) -> Iterator[ImageStubServer]:
    """A running `ImageStubServer` on a free loopback port, stopped afterwards.

    Args:
        png: the image every generation returns.
        description: the text every chat completion returns.
        answer_with: `b64_json` (the default) or `url`.
        revised_prompt: returned with each image when set.

    Yields:
        The server: `.base_url` to point a client at, `.requests` to check what it sent,
        `.inject(...)` to queue faults.
    """
    with ImageStubServer(png, description, answer_with=answer_with,
                         revised_prompt=revised_prompt) as server:
        yield server
