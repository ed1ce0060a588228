"""Free disk space under a SQLite database: refuse new work early, and give the WAL's space back.

In WAL mode every commit is appended to `<db>-wal`; a checkpoint copies it into the database file
but leaves the WAL at its largest size. On a small disk the WAL can take the last free bytes: then
every write fails ("database or disk is full") and a restart does not help, the WAL is still there.
So the connection caps the WAL it keeps after a checkpoint (`journal_size_limit`, engine.py); when a
write fails for want of space, or free space is below the floor, the guard checkpoints and truncates
the WAL (in the background, at most every few seconds); and while free space stays below the floor
new work is refused with the reason, before it can fail half way. A checkpoint itself needs room
(the database file grows by the pages it takes from the WAL), so the guard keeps a reserve file
(`<db>-reserve`, `[storage] reserve_mb`) that it gives up when the disk is full and takes back when
space returns; a disk already full when the service starts gives it up too, or SQLite could not
even open the database. When space returns, so does service: nothing here needs a restart.
PostgreSQL keeps its own disk: the guard never refuses there.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

SQLITE_FULL = 13
RECLAIM_EVERY_S = 2.0
# What SQLite needs free to open a WAL database whose -shm and -wal files are gone (a clean
# shutdown removes them): the shared-memory index alone is 32 KiB.
OPEN_ROOM_BYTES = 256 * 1024


def sqlite_directory(engine: Engine) -> Path | None:
    """The directory holding a SQLite database file (and its WAL); None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve().parent


def is_disk_full(error: BaseException) -> bool:
    """A database error that means the disk (or the file system's quota) is full."""
    original = getattr(error, "orig", None) or error
    if getattr(original, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if isinstance(original, OSError) and original.errno == errno.ENOSPC:
        return True
    return "disk is full" in str(original)


def checkpoint_and_truncate(engine: Engine) -> tuple[int, int, int]:
    """Copy the WAL into the database and cut it to zero bytes (SQLite's `busy`, `log`,
    `checkpointed` counts); what a reader still needs stays, and is cut the next time."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = cursor.fetchone()
        cursor.close()
        if row is None:
            raise RuntimeError("wal_checkpoint returned no row")
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        raw.close()


class SpaceGuard:
    """Watches the free space under one engine's SQLite database (a no-op on PostgreSQL)."""

    def __init__(self, engine: Engine, *, min_free_bytes: int, reserve_bytes: int = 0) -> None:
        self.engine = engine
        self.min_free_bytes = min_free_bytes
        self.reserve_bytes = reserve_bytes
        self.directory = sqlite_directory(engine)
        database = make_url(str(engine.url)).database if self.directory is not None else None
        self.reserve = Path(f"{database}-reserve") if database and reserve_bytes else None
        self._lock = threading.Lock()
        self._write_failed = False
        self._reclaiming: threading.Thread | None = None
        self._last_reclaim = float("-inf")
        if self.directory is not None:
            event.listen(engine, "handle_error", self._on_error)
            self._room_to_open()
            self._keep_reserve()

    def _room_to_open(self) -> None:
        """A disk already full at start: give the reserve up, or SQLite cannot even open the
        database (its -shm and -wal files need room); new work stays refused below the floor, and
        the reserve is taken back when space returns."""
        if self.reserve is None or not self.reserve.exists():
            return
        free = self.free_bytes()
        if free is not None and free < OPEN_ROOM_BYTES:  # a disk only below the floor keeps it
            log.warning("the disk is full at start: giving up the reserve %s", self.reserve)
            self.reserve.unlink(missing_ok=True)

    def _on_error(self, context: Any) -> None:
        if is_disk_full(context.original_exception):
            log.error("a write failed, the disk is full: the WAL will be checkpointed and cut")
            with self._lock:
                self._write_failed = True
            self.reclaim_soon()

    def free_bytes(self) -> int | None:
        if self.directory is None:
            return None
        return shutil.disk_usage(self.directory).free

    def refusal(self) -> str | None:
        """Why new work is refused right now (free space below the floor), or None."""
        free = self.free_bytes()
        if free is None:
            return None
        if free >= self.min_free_bytes and not self._write_failed:
            self._keep_reserve(free)
            return None
        self.reclaim_soon()
        if free >= self.min_free_bytes:
            return None
        return (
            f"the database's disk is almost full: {free // 1024} KiB free, below the floor of "
            f"{self.min_free_bytes // 1024} KiB ([storage] min_free_mb); nothing was written, "
            "retry when space is freed"
        )

    def reclaim_soon(self) -> None:
        """Checkpoint and truncate the WAL in the background (one at a time, not too often)."""
        with self._lock:
            now = time.monotonic()
            if self._reclaiming is not None and self._reclaiming.is_alive():
                return
            if now - self._last_reclaim < RECLAIM_EVERY_S:
                return
            self._last_reclaim = now
            self._reclaiming = threading.Thread(
                target=self.reclaim, name="wal-reclaim", daemon=True
            )
            self._reclaiming.start()

    def reclaim(self) -> bool:
        """Checkpoint and truncate the WAL now; True when the whole WAL was copied and cut."""
        if self.directory is None:
            return True
        if self._write_failed and self.reserve is not None and self.reserve.exists():
            log.warning("the disk is full: giving up the reserve %s to checkpoint", self.reserve)
            self.reserve.unlink(missing_ok=True)
        try:
            busy, frames, done = checkpoint_and_truncate(self.engine)
        except Exception as exc:  # the database may be unreachable; the next failure retries
            log.warning("WAL checkpoint failed: %s", exc)
            return False
        complete = busy == 0 and frames == done
        with self._lock:
            if complete:
                self._write_failed = False
        log.info("WAL checkpoint: %d of %d frames copied, busy=%d", done, frames, busy)
        return complete

    def _keep_reserve(self, free: int | None = None) -> None:
        """Take the reserve back once there is room for it above the floor."""
        if self.reserve is None or self.reserve.exists():
            return
        free = self.free_bytes() if free is None else free
        if free is None or free < self.min_free_bytes + 2 * self.reserve_bytes:
            return
        try:
            with self.reserve.open("wb") as out:
                os.posix_fallocate(out.fileno(), 0, self.reserve_bytes)
        except OSError as exc:
            log.warning("cannot keep the disk reserve %s: %s", self.reserve, exc)
            self.reserve.unlink(missing_ok=True)
