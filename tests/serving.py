"""Waiting for servers the way a busy machine needs: on readiness signals, never on a short clock.

Every wait here ends when its signal comes (a port answers, a condition holds) or when the process
it waits on has died; `SAFETY_S` only stops a test that would otherwise hang for ever, and is long
enough that a loaded machine (load average 10-20 on two cores) never reaches it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SAFETY_S = float(os.environ.get("POS_LOYALTY_TEST_SAFETY_S", "300"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], Any],
    what: str,
    *,
    alive: Callable[[], bool] = lambda: True,
    diagnose: Callable[[], str] = lambda: "",
    safety_s: float = SAFETY_S,
    interval_s: float = 0.02,
) -> Any:
    """Poll `condition` until it is truthy (returned); fail at once if `alive()` turns false."""
    deadline = time.monotonic() + safety_s
    while True:
        result = condition()
        if result:
            return result
        if not alive():
            raise AssertionError(f"{what}: the process it waited on died\n{diagnose()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within the {safety_s:.0f} s safety\n{diagnose()}")
        time.sleep(interval_s)


def answers(url: str) -> bool:
    """The URL answers 200 (a server that is up and serving)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def wait_serving(
    base_url: str, process: subprocess.Popen[Any], diagnose: Callable[[], str] = lambda: ""
) -> None:
    """A `pos-loyalty serve` process is up: its /healthz answers (start-up on a loaded machine
    imports, migrates and starts devices for as long as it takes)."""
    wait_until(
        lambda: answers(base_url + "/healthz"),
        f"serve never answered on {base_url}",
        alive=lambda: process.poll() is None,
        diagnose=diagnose,
    )


@contextmanager
def running_server(app: Any) -> Iterator[int]:
    """The ASGI `app` on a real uvicorn server on a free port, in a thread; yields the port."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn never started", alive=thread.is_alive)
        yield config.port
    finally:
        server.should_exit = True
        thread.join(timeout=SAFETY_S)
