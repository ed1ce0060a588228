"""The store's side of head office: pull the current bundle (`If-None-Match`), report what runs,
and a background loop that pulls on an interval with jitter and exponential backoff, and
activates each accepted bundle at its moment. Everything used was verified first (local.py)."""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Self

from pos_loyalty import __version__
from pos_loyalty.hq.bundle import BundleRefused
from pos_loyalty.hq.figures import measure_store
from pos_loyalty.hq.local import (
    accept_bundle,
    apply_active,
    hq_config,
    local_status,
    newest_accepted,
    next_activation,
    printable,
    record_sync,
)
from pos_loyalty.store import Store

log = logging.getLogger("pos_loyalty.hq")

MAX_BUNDLE_BYTES = 8 * 1024 * 1024
LOCAL_CHECK_S = 1.0  # how often the loop looks for bundles `rules sync` stored meanwhile


@dataclass(frozen=True, slots=True)
class PullOutcome:
    result: Literal["accepted", "unchanged", "refused", "failed"]
    version: int | None
    message: str


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(4096).decode("utf-8", "replace"))
        return f"{body['error']['code']}: {body['error']['message']}"
    except (ValueError, KeyError, TypeError, OSError, http.client.HTTPException):
        return exc.reason if isinstance(exc.reason, str) else "no details"


def pull_once(*, store: Store) -> PullOutcome:
    """One pull: download head office's current bundle for this store if it changed, keep it
    if it passes every check, and report the store's state with the request."""
    hq = hq_config(store)
    now = store.now()
    with store.uow() as uow:
        status = local_status(uow=uow)
        known = newest_accepted(uow)
    # the store's books (points owed, coupons, RFM) ride along: head office's console sums them
    figures = measure_store(store=store, now=now).to_query()
    query = urllib.parse.urlencode(
        {
            "store": store.settings.store.id,
            "active": status.active_version or "",
            "pending": status.pending_version or "",
            "error": status.last_error[:300],
            "software": __version__,
            **figures,
        }
    )
    request = urllib.request.Request(
        f"{hq.url.rstrip('/')}/v1/hq/bundles/current?{query}",
        headers={"Authorization": f"Bearer {hq.api_key}", "Accept": "application/json"},
    )
    if known:
        request.add_header("If-None-Match", f'"v{known}"')
    try:
        with urllib.request.urlopen(request, timeout=hq.timeout_s) as response:
            raw = response.read(MAX_BUNDLE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            record_sync(store=store, now=now)
            return PullOutcome("unchanged", known or None, "head office has nothing newer")
        if exc.code == 404:
            record_sync(store=store, now=now)
            return PullOutcome("unchanged", known or None, "head office has no bundle for us")
        message = f"head office answered {exc.code} ({printable(_error_text(exc), 200)})"
        record_sync(store=store, now=now, error=message)
        return PullOutcome("failed", None, message)
    except http.client.IncompleteRead as exc:
        message = f"refused (malformed): the download was cut short ({len(exc.partial)} bytes)"
        record_sync(store=store, now=now, error=message)
        return PullOutcome("refused", None, message)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        message = f"head office unreachable ({printable(str(reason), 200)})"
        record_sync(store=store, now=now, error=message)
        return PullOutcome("failed", None, message)
    if len(raw) > MAX_BUNDLE_BYTES:
        message = f"refused (malformed): the bundle is larger than {MAX_BUNDLE_BYTES} bytes"
        record_sync(store=store, now=now, error=message)
        return PullOutcome("refused", None, message)
    try:
        bundle = accept_bundle(store=store, raw=raw, now=now)
    except BundleRefused as refused:
        return PullOutcome("refused", None, f"refused ({refused.reason}): {refused.message}")
    return PullOutcome("accepted", bundle.version, f"accepted v{bundle.version}")


def next_delay(*, interval_s: float, max_backoff_s: float, failures: int) -> float:
    """Seconds to the next pull: the interval ±20 %, or after failures an exponential backoff
    with full jitter (so 200 stores do not all come back at the same second)."""
    if failures == 0:
        return interval_s * random.uniform(0.8, 1.2)
    ceiling = min(max_backoff_s, interval_s * 2 ** min(failures, 30))
    return random.uniform(ceiling / 2, ceiling)


class BundleSync:
    """The background loop `serve` runs for a store with `[hq]`: the last good bundle is made
    active before the first request, then pulls and activations follow in their own thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rules-sync", daemon=True)

    def __enter__(self) -> Self:
        apply_active(store=self.store, now=self.store.now())  # head office may be down
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def pull_now(self) -> None:
        """Pull at once (SIGHUP): the loop wakes up."""
        self._wake.set()

    def _seconds_to_activation(self, now: datetime) -> float:
        with self.store.uow() as uow:
            moment = next_activation(uow=uow)
        return LOCAL_CHECK_S if moment is None else max(0.0, (moment - now).total_seconds())

    def _run(self) -> None:
        hq = hq_config(self.store)
        failures = 0
        next_pull = time.monotonic()
        while not self._stop.is_set():
            try:
                apply_active(store=self.store, now=self.store.now())
                if time.monotonic() >= next_pull or self._wake.is_set():
                    self._wake.clear()
                    outcome = pull_once(store=self.store)
                    failures = failures + 1 if outcome.result == "failed" else 0
                    next_pull = time.monotonic() + next_delay(
                        interval_s=hq.interval_s, max_backoff_s=hq.max_backoff_s, failures=failures
                    )
                    apply_active(store=self.store, now=self.store.now())
                wait = min(
                    max(0.0, next_pull - time.monotonic()),
                    LOCAL_CHECK_S,
                    self._seconds_to_activation(self.store.now()),
                )
            except Exception:  # the loop must outlive a database hiccup; the lanes keep selling
                log.exception("rules sync failed; retrying")
                wait = LOCAL_CHECK_S
            self._wake.wait(timeout=wait)
