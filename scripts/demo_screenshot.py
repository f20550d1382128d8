"""The README's screenshot of `aisle demo`: starts the demo on a real model, asks for a
sample user's recommendations in headless Chromium, waits for the list, saves the page.

Run (one model job at a time on a small machine; takes a few minutes on 2 cores):

    .venv/bin/python scripts/demo_screenshot.py --model local:qwen2.5-coder-0.5b \\
        --data ../shared/data --out docs/demo.png
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="local:qwen2.5-coder-0.5b")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--user", default="40610")
    parser.add_argument("--out", type=Path, default=Path("docs/demo.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="Seconds to wait for the recommendations.")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "aisle.cli", "demo", "--port", str(port),
                             "--model", args.model, "--data", str(args.data)],
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("aisle demo did not start")
            time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                        args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url, wait_until="load")
            box = page.locator("#message textarea")
            box.wait_for(timeout=30_000)
            box.fill(f"What should user {args.user} play next?")
            box.press("Enter")
            # Wait for the list, not for a status line: with the agents' answers in the
            # response cache, a status can come and go between two polls.
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.locator("#recommendations ol li").first.wait_for(timeout=args.timeout * 1000)
            page.locator("#status", has_text="Done").wait_for(timeout=60_000)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"wrote {args.out}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
