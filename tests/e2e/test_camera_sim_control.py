"""`pos-loyalty sim camera --port` is a network camera (MJPEG over HTTP) whose scene and faults are
acted out from outside through `pos-loyalty sim control`, against a real `serve` whose lane-1
camera is that camera's URL: a QR shown identifies the customer; torn frames identify no one and
the camera reads again once they stop; unplugged, the lane hears of it and the camera comes back.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.customers.service import enrol_customer, loyalty_qr
from pos_loyalty.settings import load_settings
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.e2e.test_serve_lanes import EXE, Event, Follower, Service
from tests.serving import SAFETY_S

CONFIG = """
[store]
id = "msk-001"
name = "Магазин у дома"
database_url = "sqlite:///./store.db"
secret_file = "./secret.key"

[[lanes]]
id = "lane-1"
camera = {{ source = "{url}", debounce_s = 3.0 }}
"""

CAMERA = "lane-1/camera"


def control(socket_path: Path, *command: str) -> str:
    """What a person types at the shell: `pos-loyalty sim control SOCKET COMMAND …`."""
    done = subprocess.run(
        [EXE, "sim", "control", str(socket_path), *command],
        capture_output=True,
        text=True,
        timeout=SAFETY_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def start_camera(
    socket_path: Path, width: str, height: str, fps: str
) -> tuple[subprocess.Popen[str], str]:
    """`pos-loyalty sim camera --port 0 --control SOCKET`, and the line it prints once it listens
    on both."""
    size = ["--width", width, "--height", height, "--fps", fps]
    camera = subprocess.Popen(
        [EXE, "sim", "camera", "--port", "0", "--control", str(socket_path), *size],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert camera.stdout is not None
    return camera, camera.stdout.readline()


class Counter:
    """The camera process, the service reading it, and a till following lane-1."""

    def __init__(self, root: Path) -> None:
        self.socket = root / "camera.ctl"
        self.camera, banner = start_camera(self.socket, "640", "480", "10")
        found = re.search(r"on (http://\S+)", banner)
        assert found, banner
        self.url = found.group(1).rstrip(";")
        config = root / "config.toml"
        config.write_text(CONFIG.format(url=self.url), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
        upgrade = [EXE, "db", "upgrade", "--config", str(config)]
        subprocess.run(upgrade, cwd=root, env=env, check=True)
        store = Store.open(load_settings(config, environ={}))
        try:
            self.qrs: dict[str, str] = {}
            for phone, name in (("+7 916 123-45-67", "Иван"), ("+7 916 765-43-21", "Мария")):
                with store.uow(write=True) as uow:
                    settings, secret = store.settings, store.secret
                    customer = enrol_customer(
                        uow=uow, settings=settings, secret=secret, phone=phone, name=name
                    )
                self.qrs[customer.id] = loyalty_qr(
                    secret=store.secret, customer_id=customer.id, now=store.now()
                )
            token = new_key(store, Scope.TILL)
        finally:
            store.close()
        self.service = Service(root, config, token)
        self.follower = Follower(self.service.base_url, token, "lane-1")

    def identified(self, timeout: float = SAFETY_S) -> Event:
        return self.follower.wait_for(
            lambda e: e["type"] == "customer_identified" and e["source"] == CAMERA, timeout
        )

    def camera_state(self) -> dict[str, Any]:
        return self.service.device(CAMERA)

    def close(self) -> None:
        try:
            self.service.stop()
        finally:
            self.camera.terminate()
            self.camera.wait(SAFETY_S)


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[Counter]:
    counter = Counter(tmp_path)
    try:
        yield counter
    finally:
        counter.close()


def test_the_standalone_camera_is_driven_through_sim_control(counter: Counter) -> None:
    ivan, maria = counter.qrs
    assert "showing=nothing" in control(counter.socket, "status")
    counter.service.wait_device(CAMERA, lambda d: d["connected"] and d["frames_decoded"] > 0)

    assert control(counter.socket, "show", counter.qrs[ivan]) == "ok showing a qr"
    assert counter.identified()["customer"]["id"] == ivan

    # Torn frames: the code is on them, but no one is read from them ...
    assert "garble=on" in control(counter.socket, "garble")
    control(counter.socket, "show", counter.qrs[maria])
    decoded = counter.camera_state()["frames_decoded"]
    counter.service.wait_device(CAMERA, lambda d: d["frames_decoded"] >= decoded + 20)
    torn = re.search(r"garbled_frames=(\d+)", control(counter.socket, "status"))
    assert torn is not None and int(torn[1]) >= 20
    assert not [e for e in drain(counter.follower) if e["type"] == "customer_identified"]
    # ... and once the frames are whole again, Maria is.
    assert "garble=off" in control(counter.socket, "clear")
    assert counter.identified()["customer"]["id"] == maria

    # Unplugged: the lane hears of it, the frame rate is 0; plugged back, it reads again.
    assert "plugged=False" in control(counter.socket, "unplug")
    counter.follower.wait_for(lambda e: e["type"] == "device_fault" and e["device"] == CAMERA)
    state = counter.service.wait_device(CAMERA, lambda d: not d["connected"])
    assert state["fps"] == 0
    control(counter.socket, "hide")
    assert "plugged=True" in control(counter.socket, "replug")
    counter.follower.wait_for(lambda e: e["type"] == "device_restored" and e["device"] == CAMERA)
    assert "showing=nothing" in control(counter.socket, "status")


def drain(follower: Follower) -> list[Event]:
    events = []
    while not follower.events.empty():
        events.append(follower.events.get_nowait())
    return events


def test_sim_camera_answers_an_unknown_command_with_an_error(tmp_path: Path) -> None:
    socket_path = tmp_path / "camera.ctl"
    camera, banner = start_camera(socket_path, "320", "240", "5")
    try:
        assert "fault control at" in banner
        done = subprocess.run(
            [EXE, "sim", "control", str(socket_path), "explode"],
            capture_output=True,
            text=True,
            timeout=SAFETY_S,
        )
        assert done.returncode == 1 and "unknown command 'explode'" in done.stdout
        helped = control(socket_path, "help")
        assert set(helped.split()[1:]) == {
            "clear",
            "garble",
            "hide",
            "replug",
            "show",
            "status",
            "unplug",
        }
    finally:
        camera.terminate()
        camera.wait(SAFETY_S)
