"""HTTP clients for the OpenAI-compatible wire path.

An httpx connection pool belongs to the event loop that opened its connections; a
chat model used from two loops (two `asyncio.run` calls, a pytest-asyncio test per
loop, a thread with its own loop) would otherwise reuse a dead loop's connections
and fail with "Event loop is closed". `LoopLocalTransport` keeps one pool per
running loop, so keep-alive still works within a loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import httpx

__all__ = ["LoopLocalTransport", "async_client"]


class LoopLocalTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncHTTPTransport` per event loop."""

    def __init__(self, limits: httpx.Limits | None = None) -> None:
        self._limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._transports: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _current(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        with self._lock:
            transport = self._transports.get(loop)
            if transport is None:
                transport = self._transports[loop] = httpx.AsyncHTTPTransport(limits=self._limits)
            return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._current().handle_async_request(request)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            transport = self._transports.pop(loop, None)
        if transport is not None:
            await transport.aclose()


def async_client(timeout: float) -> httpx.AsyncClient:
    """An async client whose connections never cross event loops."""
    return httpx.AsyncClient(transport=LoopLocalTransport(), timeout=timeout)
