"""The folder `serve` gives its simulated devices (scanner ptys, printed receipts), and the
clean-up of folders that a killed `serve` left behind.

A `serve` stopped normally removes its folder; one killed with SIGKILL cannot. So each folder is
named for the process that owns it (`pos-sim-<pid>-<random>`), and every `serve` that starts
simulated devices first removes the folders whose owner is no longer running.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "pos-sim-"
_OWNED = re.compile(rf"^{PREFIX}(?P<pid>[0-9]{{1,10}})-")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_abandoned_workdirs(parent: Path | None = None) -> list[Path]:
    """Remove the `pos-sim-<pid>-…` folders under `parent` (the temp dir) whose process is gone."""
    base = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in base.glob(f"{PREFIX}*"):
        match = _OWNED.match(folder.name)
        if match is None or not folder.is_dir() or process_alive(int(match["pid"])):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    if removed:
        log.info("removed %d simulator folder(s) left by stopped processes", len(removed))
    return removed


@contextmanager
def sim_workdir(parent: Path | None = None) -> Iterator[Path]:
    """A fresh folder for this process's simulated devices, removed on the way out."""
    remove_abandoned_workdirs(parent)
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=parent) as folder:
        yield Path(folder)
