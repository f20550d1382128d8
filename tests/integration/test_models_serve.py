"""`aisle models serve` exposes the embedded model as an OpenAI-compatible server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_serve_answers_openai_requests_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aisle.cli", "models", "serve", "--port", "0", "--parallel", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
            url = match.group(1) if match else None
        assert url, "the server never printed its address"
        models = httpx.get(f"{url}/models", timeout=10).json()
        assert models["data"]
        answer = httpx.post(f"{url}/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}).json()
        assert answer["choices"][0]["message"]["role"] == "assistant"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
