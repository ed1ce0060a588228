"""Readiness: can this service take a sale right now? (Liveness — is the process up — is /healthz.)

A sale needs a database that accepts writes and room on its disk: either failing makes the service
not ready. Receipts wait in a durable queue and devices reconnect by themselves, so a stuck print
queue or a device that is down makes it `degraded` (reported, still ready for sales).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox
from pos_loyalty.store import Store

READY, DEGRADED, NOT_READY = "ready", "degraded", "not_ready"


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.data}


@dataclass(frozen=True, slots=True)
class Readiness:
    status: str  # ready | degraded | not_ready
    checks: dict[str, Check]

    @property
    def reason(self) -> str:
        """The failing checks in one line, the ones that stop sales first."""
        failing = [f"{name}: {c.detail}" for name, c in self.checks.items() if not c.ok]
        return "; ".join(failing) or "ready"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": {k: c.to_dict() for k, c in self.checks.items()}}


def probe_database_write(*, store: Store) -> Check:
    """A real write the database must commit: the schema version row rewritten with itself
    (one page on SQLite; refused by a read-only PostgreSQL transaction or a read-only file)."""
    try:
        with store.uow(write=True) as uow:
            uow.session.execute(text("UPDATE alembic_version SET version_num = version_num"))
            uow.commit()
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Check(False, f"the database cannot write: {message}")
    return Check(True, "the database accepts writes")


def probe_disk(*, store: Store) -> Check:
    refusal = store.space.refusal()
    free = store.space.free_bytes()
    data = {} if free is None else {"free_bytes": free, "floor_bytes": store.space.min_free_bytes}
    if refusal is not None:
        return Check(False, refusal, data)
    return Check(True, "enough free space" if free is not None else "not a local file", data)


def probe_print_queue(*, store: Store) -> Check:
    """Receipts queued longer than `[readiness] print_stuck_after_s` mean a printer is stuck."""
    stuck_after = store.settings.readiness.print_stuck_after_s
    before = store.now() - timedelta(seconds=stuck_after)
    statement = select(func.count(), func.min(ReceiptOutbox.created_at)).where(
        col(ReceiptOutbox.status) == OutboxStatus.QUEUED.value,
        col(ReceiptOutbox.created_at) < before,
    )
    try:
        with store.uow() as uow:
            stuck, oldest = uow.session.execute(statement).one()
    except SQLAlchemyError as exc:
        return Check(False, f"the print queue cannot be read: {getattr(exc, 'orig', exc)}")
    if stuck:
        return Check(
            False,
            f"{stuck} receipt(s) queued for more than {stuck_after} s",
            {"stuck": int(stuck), "oldest": oldest.isoformat() if oldest else None},
        )
    return Check(True, "no receipt waits too long", {"stuck": 0})


def probe_devices(devices: list[dict[str, Any]]) -> Check:
    down = [d["name"] for d in devices if not d.get("connected", False)]
    if down:
        return Check(False, f"not connected: {', '.join(down)}", {"down": down})
    return Check(True, f"{len(devices)} device(s) connected", {"down": []})


def check_readiness(*, store: Store, devices: list[dict[str, Any]]) -> Readiness:
    """Every check, and whether the service can take a sale (database and disk) or is degraded."""
    checks = {
        "database": probe_database_write(store=store),
        "disk": probe_disk(store=store),
        "print_queue": probe_print_queue(store=store),
        "devices": probe_devices(devices),
    }
    if not (checks["database"].ok and checks["disk"].ok):
        status = NOT_READY
    elif all(c.ok for c in checks.values()):
        status = READY
    else:
        status = DEGRADED
    return Readiness(status, checks)
