"""Real file systems for fault tests: a tiny tmpfs that fills up, a read-only view of a folder.

Mounting needs root (CI runs as root); elsewhere the tests that need it skip and say why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("this test mounts a real file system, which needs root (CI runs as root)")
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({' '.join(args)}): {result.stderr.strip()}")


def _unmount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@contextmanager
def tiny_filesystem(target: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "2m") mounted at `target`: a disk that really fills up."""
    target.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target))
    try:
        yield target
    finally:
        _unmount(target)


@contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """`source` seen read-only at `target` (a read-only bind mount): writes there get EROFS."""
    target.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(target))
    try:
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(target)], check=True, capture_output=True
        )
        yield target
    finally:
        _unmount(target)


def fill(folder: Path, *, leave_bytes: int = 0) -> Path:
    """Fill the file system under `folder` with a ballast file until `leave_bytes` are free."""
    ballast = folder / "ballast"
    with ballast.open("ab") as out:
        chunk = b"\0" * 65536
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave_bytes:
                break
            try:
                out.write(chunk[: max(1, min(len(chunk), free - leave_bytes))])
                out.flush()
            except OSError:
                break
    return ballast
