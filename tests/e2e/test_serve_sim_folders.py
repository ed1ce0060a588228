"""`serve` with simulated devices keeps them in a `pos-sim-<pid>-…` folder in the temp directory;
one killed with SIGKILL cannot remove it, so the next `serve` does."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.e2e.test_cli import EXE, write_config
from tests.serving import SAFETY_S, free_port, wait_serving, wait_until


def start(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [EXE, "serve", "--config", str(config), "--port", str(port)],
        cwd=config.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def sim_folders(tmp: Path, pid: int) -> list[Path]:
    return sorted(tmp.glob(f"pos-sim-{pid}-*"))


def test_folders_left_by_a_killed_serve_are_removed_by_the_next(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '\n[[lanes]]\nid = "lane-1"\nprinter = { connection = "sim://printer" }\n',
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    foreign = tmp / "pos-sim-notours"  # not named for a process: never touched
    foreign.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    env["TMPDIR"] = str(tmp)
    port = free_port()
    first = start(config, port, env)
    try:
        wait_serving(f"http://127.0.0.1:{port}", first)
        (left,) = wait_until(lambda: sim_folders(tmp, first.pid), "no simulator folder")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=SAFETY_S)
    assert left.is_dir()  # SIGKILL: nothing could clean up

    second = start(config, port, env)
    try:
        wait_serving(f"http://127.0.0.1:{port}", second)
        assert sim_folders(tmp, second.pid)
        assert not left.exists()
        assert foreign.is_dir()
    finally:
        second.terminate()
        second.wait(timeout=SAFETY_S)
    assert not sim_folders(tmp, second.pid)  # a clean stop removes its own
