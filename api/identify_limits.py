"""Failed identifications counted per API key and per lane, so a script cannot walk through phone
numbers (`[identity] failures_per_key`, `failures_per_lane` within `failure_window_s`).

Only failures count (an unknown or invalid phone, card or QR): a till that recognises its
customers is never slowed. Counts live in this server process (each API worker counts its own).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from pos_loyalty.settings import IdentityConfig


@dataclass(frozen=True, slots=True)
class Refusal:
    by: str  # "key" or "lane"
    limit: int
    retry_after_s: int


class IdentifyFailureLimiter:
    def __init__(
        self, config: IdentityConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = config.failure_window_s
        self.limits = {"key": config.failures_per_key, "lane": config.failures_per_lane}
        self._clock = clock
        self._lock = Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, who: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(who)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[who]
        return times

    def refusal(self, *, key: str, lane: str | None) -> Refusal | None:
        """Why this key or lane may not try now (and for how long), or None."""
        now = self._clock()
        with self._lock:
            for by, name in (("key", key), ("lane", lane)):
                if name is None:
                    continue
                times = self._recent((by, name), now)
                limit = self.limits[by]
                if len(times) >= limit:
                    # Allowed again when enough of the failures have left the window.
                    until = times[len(times) - limit] + self.window_s
                    return Refusal(by, limit, max(1, math.ceil(until - now)))
        return None

    def failed(self, *, key: str, lane: str | None) -> None:
        now = self._clock()
        with self._lock:
            for by, name in (("key", key), ("lane", lane)):
                if name is not None:
                    self._recent((by, name), now)
                    self._failures.setdefault((by, name), deque()).append(now)
