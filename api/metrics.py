"""Prometheus metrics: request latency per route, identifications by method and outcome, and at
each scrape the store's business totals for today (from the database), its devices (from the lane
hub) and, for a store that pulls from head office, how its rules sync goes."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pos_loyalty.hq.local import local_status
from pos_loyalty.lanes import LaneHub
from pos_loyalty.reports.figures import local_day, store_figures
from pos_loyalty.store import Store

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """One registry per app, so several apps (tests) never collide on metric names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "pos_loyalty_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.identifications = Counter(
            "pos_loyalty_identifications_total",
            "Identification attempts by method and outcome",
            ["method", "outcome"],
            registry=self.registry,
        )

    def watch(self, *, store: Store, hub: LaneHub) -> None:
        """Export the store's business totals, device states and (with `[hq] url`) its
        head-office sync at every scrape."""
        self.registry.register(StoreCollector(store, hub))
        self.registry.register(HeadOfficeSyncCollector(store))


# (metric name, help, Figures field). Today's totals, since the store's local midnight: each
# scrape reads one day of rows through the `created_at` indexes instead of every row ever written
# (migration 0033). A counter that drops to 0 at midnight is a counter reset, which rate() and
# increase() handle, so per-period values over any range stay right.
TODAY = "since the store's local midnight"
BUSINESS_TOTALS = (
    ("pos_loyalty_sales", f"Committed sales {TODAY}", "sales"),
    (
        "pos_loyalty_sales_amount_minor",
        f"Paid in money by sales {TODAY}, in minor units",
        "sales_amount",
    ),
    ("pos_loyalty_discount_minor", f"Discounts given {TODAY}, in minor units", "discounts"),
    ("pos_loyalty_points_value_minor", f"Paid with points {TODAY}, in minor units", "points_value"),
    ("pos_loyalty_refunds", f"Refunds {TODAY}", "refunds"),
    ("pos_loyalty_points_issued", f"Points earned by customers {TODAY}", "points_issued"),
    ("pos_loyalty_points_burned", f"Points spent by customers {TODAY}", "points_burned"),
    ("pos_loyalty_coupons_issued", f"Coupons issued {TODAY}", "coupons_issued"),
    ("pos_loyalty_coupons_redeemed", f"Coupons redeemed {TODAY}", "coupons_redeemed"),
)


class StoreCollector(Collector):
    """Read at scrape time, so every API worker of one database exports the same totals."""

    def __init__(self, store: Store, hub: LaneHub) -> None:
        self.store = store
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        yield from self._business()
        yield from self._devices()
        rules = GaugeMetricFamily(
            "pos_loyalty_rules_info", "The active rules bundle", labels=["version"]
        )
        rules.add_metric([self.store.rules.version], 1)
        yield rules
        count = GaugeMetricFamily("pos_loyalty_rules", "Rules in the active bundle")
        count.add_metric([], self.store.rules.rule_count)
        yield count

    def _business(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pos_loyalty_database_up", "1 when the last scrape could read the business totals"
        )
        since, until = local_day(self.store.now(), self.store.settings.store.tz)
        try:
            with self.store.uow() as uow:
                figures = store_figures(uow=uow, since=since, until=until)
        except SQLAlchemyError as exc:
            log.warning("metrics: business totals unavailable, database error: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, help_, field in BUSINESS_TOTALS:
            family = CounterMetricFamily(name, help_)
            family.add_metric([], getattr(figures, field))
            yield family

    def _devices(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pos_loyalty_device_up",
            "1 when the device is connected and reports no fault",
            labels=["device", "lane", "kind"],
        )
        queue = GaugeMetricFamily(
            "pos_loyalty_print_queue_depth", "Receipts waiting for a printer", labels=["lane"]
        )
        for device in self.hub.devices():
            labels = [device["name"], device["lane_id"], device["kind"]]
            healthy = bool(device.get("connected")) and not device.get("last_error")
            up.add_metric(labels, 1 if healthy else 0)
            if device["kind"] == "printer" and "queue_length" in device:
                queue.add_metric([device["lane_id"]], int(device["queue_length"] or 0))
        yield up
        yield queue


class HeadOfficeSyncCollector(Collector):
    """A store that pulls its rules from head office (`[hq] url`): the bundle it runs, how long
    since a pull last succeeded, and the pulls that failed, from what `hq.sync` records in the
    database (so every worker, and the pull loop of `serve`, report the same)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        if self.store.settings.hq is None:
            return
        try:
            with self.store.uow() as uow:
                status = local_status(uow=uow)
        except SQLAlchemyError as exc:
            log.warning("metrics: head-office sync state unavailable, database error: %s", exc)
            return
        now = self.store.now()
        yield GaugeMetricFamily(
            "pos_loyalty_rules_active_bundle",
            "Version of the head-office bundle the store runs (0: its own config.toml)",
            value=status.active_version or 0,
        )
        yield GaugeMetricFamily(
            "pos_loyalty_rules_pending_bundle",
            "Version of a bundle accepted and waiting for its effective_from (0: none)",
            value=status.pending_version or 0,
        )
        last_success = status.last_success_at
        yield GaugeMetricFamily(
            "pos_loyalty_hq_sync_age_seconds",
            "Seconds since a pull from head office last succeeded (+Inf: never)",
            value=(now - last_success).total_seconds() if last_success else math.inf,
        )
        yield GaugeMetricFamily(
            "pos_loyalty_hq_sync_last_success_timestamp_seconds",
            "When a pull from head office last succeeded, Unix time (0: never)",
            value=last_success.timestamp() if last_success else 0,
        )
        last_attempt = status.last_attempt_at
        yield GaugeMetricFamily(
            "pos_loyalty_hq_sync_last_attempt_timestamp_seconds",
            "When the store last pulled from head office, Unix time (0: never)",
            value=last_attempt.timestamp() if last_attempt else 0,
        )
        yield GaugeMetricFamily(
            "pos_loyalty_hq_sync_failing",
            "1 when the last pull failed (head office unreachable, an error, a refused bundle)",
            value=1 if status.failing else 0,
        )
        yield CounterMetricFamily(
            "pos_loyalty_hq_sync_failures",
            "Pulls from head office that failed or whose bundle was refused",
            value=status.failures,
        )
        yield CounterMetricFamily(
            "pos_loyalty_rules_bundles_refused",
            "Head-office bundles refused (bad signature, not newer, malformed, invalid rule)",
            value=status.refusals,
        )


class MetricsMiddleware:
    """Pure ASGI (no per-request task) so it costs microseconds on the till's hot path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The histogram's child per (method, route, status), looked up once: `labels()` takes a
        # lock and builds a key on every call, a noticeable part of a 1 ms request.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key = (scope["method"], template, status)
            child = self._children.get(key)
            if child is None:
                child = self.metrics.request_seconds.labels(key[0], template, str(status))
                self._children[key] = child
            child.observe(time.perf_counter() - start)
