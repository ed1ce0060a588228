"""The camera as hardware, and capture objects on it.

`VirtualCameraDevice` can be unplugged and plugged back, shown a new scene, or made to deliver
garbled frames (torn, as a USB camera's are when its link drops data); `VirtualCamera` behaves
like `cv2.VideoCapture` (read/grab/retrieve/isOpened/release/get/set), so a driver uses it as a
capture object; `open_sim_url` opens `sim://camera?...` URLs and registered devices.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np

from firmware_sim.camera.scene import Scenario, SceneRenderer


class VirtualCameraDevice:
    """The camera as hardware: it can be unplugged (open captures fail) and plugged back in.

    The scene runs on the device's clock, so a capture opened after a replug sees the scene
    where it has got to, as a real camera would.
    """

    def __init__(self, scenario: Scenario | None = None, seed: int = 0, *, realtime: bool = True):
        self.scenario = scenario or Scenario()
        self.seed = seed
        self.realtime = realtime
        self.renderer = SceneRenderer(self.scenario, seed)
        self.started_at = time.monotonic()
        self._plugged = True
        self._lock = threading.Lock()
        self.opens = 0
        self.scene_version = 0
        self._garble_left: int | None = 0  # frames still to come torn; None: until clear_garble
        self.garbled_frames = 0

    @property
    def plugged(self) -> bool:
        return self._plugged

    def unplug(self) -> None:
        self._plugged = False

    def replug(self) -> None:
        self._plugged = True

    def garble(self, frames: int | None = None) -> None:
        """The next `frames` frames (None: every frame until `clear_garble`) come out torn."""
        with self._lock:
            self._garble_left = frames

    def clear_garble(self) -> None:
        with self._lock:
            self._garble_left = 0

    @property
    def garbling(self) -> str:
        """For a status line: "off", "N frames" or "on"."""
        left = self._garble_left
        return "on" if left is None else (f"{left} frames" if left else "off")

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` of the scene as the camera delivers it now (torn while garbling)."""
        frame = self.renderer.frame(index)
        with self._lock:
            if self._garble_left == 0:
                return frame
            if self._garble_left is not None:
                self._garble_left -= 1
            self.garbled_frames += 1
        return torn_frame(frame, np.random.default_rng([self.seed, index, 2]))

    def show(self, scenario: Scenario, seed: int | None = None) -> None:
        """Start a new scene now (a customer steps up and holds out their phone)."""
        with self._lock:
            self.scenario = scenario
            self.seed = self.seed if seed is None else seed
            self.renderer = SceneRenderer(scenario, self.seed)
            self.started_at = time.monotonic()
            self.scene_version += 1

    def open(self, url: str | None = None) -> VirtualCamera:
        """A capture on this device; not opened (isOpened() False) while it is unplugged."""
        with self._lock:
            self.opens += 1
        return VirtualCamera(device=self)


def torn_frame(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A frame as a camera delivers it when its link lost data part-way: the top rows come
    through, the rest is 8×8 blocks of grey and green decoder garbage (so no code below the
    tear can be read)."""
    torn = frame.copy()
    height, width = torn.shape[:2]
    tear = int(height * rng.uniform(0.15, 0.4)) // 8 * 8
    rows, cols = (height - tear + 7) // 8, (width + 7) // 8
    blocks = rng.integers(0, 4, (rows, cols))
    palette = np.array([[128, 128, 128], [0, 135, 0], [90, 90, 90], [160, 200, 160]], np.uint8)
    garbage = np.repeat(np.repeat(palette[blocks], 8, axis=0), 8, axis=1)
    torn[tear:] = garbage[: height - tear, :width]
    return torn


class VirtualCamera:
    """A `cv2.VideoCapture` look-alike over a simulated scene.

    With `realtime`, `read()` paces frames at the scenario's fps and, like a live camera, skips
    ahead when the reader is slow; without it, every `read()` returns the next frame at once.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        seed: int = 0,
        *,
        realtime: bool = True,
        device: VirtualCameraDevice | None = None,
    ) -> None:
        self.device = device or VirtualCameraDevice(scenario, seed, realtime=realtime)
        self.scenario = self.device.scenario
        self._opened = self.device.plugged
        self._next_index = 0
        self._grabbed: int | None = None
        self._scene_version = self.device.scene_version
        if self.device.realtime:
            elapsed = time.monotonic() - self.device.started_at
            self._next_index = int(elapsed * self.scenario.fps)

    def isOpened(self) -> bool:
        return self._opened

    def release(self) -> None:
        self._opened = False

    def grab(self) -> bool:
        if not self._opened:
            return False
        if not self.device.plugged:
            self._opened = False  # a vanished USB camera does not come back on the same handle
            return False
        if self._scene_version != self.device.scene_version:
            # A new scene started on the device: pick it up where its clock is now.
            self._scene_version = self.device.scene_version
            self.scenario = self.device.scenario
            self._next_index = 0
        index = self._next_index
        if self.device.realtime:
            fps = self.scenario.fps
            due = self.device.started_at + index / fps
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            else:
                index = max(index, int((now - self.device.started_at) * fps))
        self._grabbed = index
        self._next_index = index + 1
        return True

    def retrieve(self, image: Any = None, flag: int = 0) -> tuple[bool, np.ndarray | None]:
        if self._grabbed is None or not self._opened:
            return False, None
        return True, self.device.frame(self._grabbed)

    def read(self, image: Any = None) -> tuple[bool, np.ndarray | None]:
        if not self.grab():
            return False, None
        return self.retrieve()

    def get(self, prop_id: int) -> float:
        s = self.scenario
        values = {
            cv2.CAP_PROP_FPS: s.fps,
            cv2.CAP_PROP_FRAME_WIDTH: float(s.width),
            cv2.CAP_PROP_FRAME_HEIGHT: float(s.height),
            cv2.CAP_PROP_POS_FRAMES: float(self._next_index),
            cv2.CAP_PROP_FRAME_COUNT: float(s.frame_count),
        }
        return float(values.get(prop_id, 0.0))

    def set(self, prop_id: int, value: float) -> bool:
        if prop_id == cv2.CAP_PROP_POS_FRAMES and not self.device.realtime:
            self._next_index = int(value)
            return True
        return False

    def getBackendName(self) -> str:
        return "firmware_sim"


# --- sim:// URLs -----------------------------------------------------------------------------

_DEVICES: dict[str, VirtualCameraDevice] = {}
_DEVICES_LOCK = threading.Lock()

_URL_KEYS = {
    "qr": ("payload", str),
    "payload": ("payload", str),
    "symbology": ("symbology", str),
    "width": ("width", int),
    "height": ("height", int),
    "fps": ("fps", float),
    "duration": ("duration_s", float),
    "show_from": ("show_from_s", float),
    "show_until": ("show_until_s", float),
    "size": ("code_size", float),
    "angle": ("angle_deg", float),
    "perspective": ("perspective", float),
    "blur": ("blur", float),
    "noise": ("noise", float),
    "contrast": ("contrast", float),
}


def register_device(name: str, device: VirtualCameraDevice) -> None:
    """Make `sim://camera/<name>` open this device (tests and the demo keep a handle to it)."""
    with _DEVICES_LOCK:
        _DEVICES[name] = device


def device_registered(name: str) -> bool:
    with _DEVICES_LOCK:
        return name in _DEVICES


def unregister_device(name: str) -> None:
    with _DEVICES_LOCK:
        _DEVICES.pop(name, None)


def scenario_from_query(query: str, base: Scenario | None = None) -> tuple[Scenario, int, bool]:
    """`qr=…&size=0.3&angle=10&seed=1&loop=1&realtime=0` → (scenario, seed, realtime)."""
    scenario = base or Scenario()
    changes: dict[str, Any] = {}
    seed, realtime = 0, True
    truthy = {"1", "true", "yes", "on"}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "seed":
            seed = int(value)
        elif key == "realtime":
            realtime = value.lower() in truthy
        elif key == "loop":
            changes["loop"] = value.lower() in truthy
        elif key in ("barcode", "ean13", "code128"):
            changes["payload"] = value
            changes["symbology"] = "ean13" if key in ("barcode", "ean13") else "code128"
        elif key == "none" or (key in ("qr", "payload") and value == ""):
            changes["payload"] = None
        elif key in _URL_KEYS:
            name, kind = _URL_KEYS[key]
            changes[name] = kind(value)
        else:
            known = ", ".join(sorted({*_URL_KEYS, "seed", "realtime", "loop", "barcode"}))
            raise ValueError(f"unknown sim camera parameter {key!r}; known: {known}")
    return replace(scenario, **changes), seed, realtime


def open_sim_url(url: str) -> VirtualCamera:
    """Open `sim://camera?qr=PAYLOAD&size=0.3…` (a fresh scene) or `sim://camera/<name>` (a
    registered device). Register this as the driver's `sim` capture scheme."""
    parts = urlsplit(url)
    if parts.scheme != "sim" or parts.netloc != "camera":
        raise ValueError(f"not a simulated camera URL: {url!r} (expected sim://camera…)")
    name = parts.path.strip("/")
    if name:
        with _DEVICES_LOCK:
            device = _DEVICES.get(name)
        if device is None:
            raise ValueError(f"no simulated camera registered as {name!r}")
        return device.open(url)
    scenario, seed, realtime = scenario_from_query(parts.query)
    return VirtualCameraDevice(scenario, seed, realtime=realtime).open(url)
