"""What a lane's print worker tells the world: the printer's state for `GET /v1/devices`, and the
lane events a till follows (`print_result`, `device_fault`, `device_restored`).

The worker (`drivers.print_queue`) decides what became of each job; this says it, once per job
and reason rather than once per retry, and keeps the counters and the fault the devices page shows.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from drivers.printer_status import PRINTER_NOT_READY_CODE, PrinterStatus
from pos_loyalty.lanes import DEVICE_FAULT, DEVICE_RESTORED, PRINT_RESULT, LaneHub
from pos_loyalty.receipts.outbox import PrintJob

log = logging.getLogger(__name__)

JOB_INTERRUPTED_CODE = "job_interrupted"
RENDER_FAILED_CODE = "render_failed"


class PrinterReport:
    """One lane printer's state as last seen, and the events that say how it changed."""

    def __init__(self, *, hub: LaneHub | None, lane_id: str, device: str) -> None:
        self.hub = hub
        self.lane_id = lane_id
        self.device = device
        self.connected: bool | None = None
        self.state = "unknown"
        self.last_error: str | None = None
        self.paper_near_end = False
        self.queue_length = 0
        self.printed = 0
        self.failed = 0
        self.interrupted = 0
        self.waiting_job: int | None = None
        self.last_contact = 0.0
        self._fault: str | None = None
        self._last_waiting: tuple[int, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields of `GET /v1/devices` this report keeps (the worker adds its printer's)."""
        return {
            "connected": bool(self.connected),
            "state": self.state,
            "last_error": self.last_error,
            "queue_length": self.queue_length,
            "waiting_job": self.waiting_job,
            "printed": self.printed,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "paper_near_end": self.paper_near_end,
        }

    # -- the printer ------------------------------------------------------------------------------

    def contact(self, status: PrinterStatus) -> None:
        """The printer answered with `status`."""
        self.last_contact = time.monotonic()
        self.connected = True
        self.paper_near_end = status.paper_near_end
        self._set_fault(status.fault, status.message)

    def lost_contact(self, code: str, message: str) -> None:
        """The printer did not answer (or answered nonsense)."""
        self.last_contact = time.monotonic()
        self.connected = False
        self._set_fault(code, message)

    def _set_fault(self, code: str | None, message: str) -> None:
        """Publish `device_fault` when a fault starts or changes, `device_restored` when it ends."""
        previous, self._fault = self._fault, code
        self.state = code or "ready"
        self.last_error = message if code else None
        if code == previous:
            return
        if code is not None:
            self.publish(DEVICE_FAULT, {"device": self.device, "code": code, "message": message})
        elif previous is not None:
            self.publish(DEVICE_RESTORED, {"device": self.device, "message": message})

    # -- what became of a job ---------------------------------------------------------------------

    def idle(self) -> None:
        self.queue_length = 0
        self.waiting_job = None
        self._last_waiting = None

    def printed_job(self, job: PrintJob, status: PrinterStatus) -> None:
        self.printed += 1
        self.waiting_job = None
        self._last_waiting = None
        self._result(
            "printed",
            job,
            attempts=job.attempts + 1,
            paper_near_end=status.paper_near_end,
        )

    def waiting(
        self, job: PrintJob, *, code: str, message: str, attempts: int, retry_in_s: float
    ) -> bool:
        """The job stays queued: said once per job and reason, not at every retry (True when
        said now)."""
        self.waiting_job = job.id
        if self._last_waiting == (job.id, code):
            return False
        self._last_waiting = (job.id, code)
        self._result(
            "waiting",
            job,
            attempts=attempts,
            code=code,
            message=message,
            retry_in_s=round(retry_in_s, 3),
        )
        return True

    def held(self, job: PrintJob, status: PrinterStatus) -> None:
        """The printer stopped part-way through the job; the rest waits in its buffer."""
        self.contact(status)
        code = status.fault or PRINTER_NOT_READY_CODE
        self.waiting_job = job.id
        if self._last_waiting == (job.id, code):
            return
        self._last_waiting = (job.id, code)
        message = f"{status.message}; the rest of the receipt prints once it is fixed"
        self._result("held", job, code=code, message=message)

    def interrupted_job(self, job: PrintJob, reason: str, copy_id: int) -> None:
        self.interrupted += 1
        self.waiting_job = None
        self._last_waiting = None
        self._result(
            "interrupted",
            job,
            code=JOB_INTERRUPTED_CODE,
            message=f"{reason}; the receipt prints again marked as a copy",
            copy_outbox_id=copy_id,
        )

    def failed_job(self, job: PrintJob, message: str) -> None:
        self.failed += 1
        self._result("failed", job, code=RENDER_FAILED_CODE, message=message)

    def _result(self, status: str, job: PrintJob, **fields: Any) -> None:
        self.publish(
            PRINT_RESULT,
            {
                "status": status,
                "device": self.device,
                "outbox_id": job.id,
                "transaction_id": job.transaction_id,
                "refund_id": job.refund_id,
                "kind": job.kind,
                **fields,
            },
        )

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        if self.hub is None:
            return
        try:
            self.hub.publish(self.lane_id, type_, data)
        except Exception:
            log.exception("%s: lane event %s not delivered", self.device, type_)
