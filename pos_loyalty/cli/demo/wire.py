"""The demo's side of the wire: a till's HTTP client, the API server it talks to, and a lane's
event stream followed as a till or a customer display follows it (stdlib HTTP only)."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# How long the demo waits for a step (an answer, an event, the server) before calling it failed.
# Steps end as soon as what they wait for happens; this only stops a demo that would hang, and is
# long enough for a loaded machine (the demo and `make test` on two busy cores).
STEP_PATIENCE_S = 180.0


@dataclass
class Reply:
    status: int
    body: Any


class TillClient:
    """What a till does: JSON over HTTP with its API key (stdlib only)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.api_key}")
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=STEP_PATIENCE_S) as response:
                raw = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raw, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return Reply(status, json.loads(raw) if "json" in kind else raw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApiServer:
    """uvicorn in a background thread, for the demo's till to talk to over real HTTP."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.port = port
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + STEP_PATIENCE_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STEP_PATIENCE_S)


class LaneFollower:
    """Follows a lane's server-sent events over HTTP, as a till or customer display would."""

    def __init__(self, base_url: str, api_key: str, lane_id: str) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        url = urlsplit(base_url)
        # Blocking reads: the stream's keep-alives come every 15 s, and close() shuts the socket
        # down to wake the reader. (A read timeout would leave the socket unreadable for good:
        # the follower went deaf after its first quiet second, and a slow step was missed.)
        self._connection = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port, timeout=STEP_PATIENCE_S
        )
        self._connection.request(
            "GET", f"/v1/lanes/{lane_id}/events", headers={"Authorization": f"Bearer {api_key}"}
        )
        self._response = self._connection.getresponse()
        if self._connection.sock is not None:
            self._connection.sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, name=f"follow-{lane_id}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        while True:
            try:
                raw = self._response.readline()
            except (OSError, ValueError, http.client.HTTPException):
                return
            if not raw:
                return  # the stream ended
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
            elif "data" in fields:
                self.events.put({"event": fields.get("event", ""), **json.loads(fields["data"])})
                fields = {}

    def next(self, kinds: set[str], *, transaction_id: str | None = None) -> dict[str, Any] | None:
        """The next event of one of `kinds` (about `transaction_id`, when given: a late event
        of an earlier sale is not taken for this one's), or None after STEP_PATIENCE_S."""
        deadline = time.monotonic() + STEP_PATIENCE_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if event["event"] not in kinds:
                continue
            if transaction_id is None or event.get("transaction_id") == transaction_id:
                return event
        return None

    def close(self) -> None:
        if self._connection.sock is not None:
            with contextlib.suppress(OSError):
                self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=STEP_PATIENCE_S)
        self._connection.close()
