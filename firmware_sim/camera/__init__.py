"""A virtual till camera: a counter scene where a customer holds up a phone showing a code.

Frames are BGR uint8 numpy arrays, deterministic for a (scenario, seed) pair (`scene`).
`VirtualCamera` behaves like `cv2.VideoCapture`, so a driver uses it as a capture object;
`VirtualCameraDevice` is the "hardware": unplugged and plugged back, shown a new scene, made to
deliver torn frames (`capture`); `open_sim_url` opens `sim://camera?...` URLs;
`CameraStreamServer` offers a device as a network camera, MJPEG over HTTP (`stream`);
`write_video` writes a scene to an MJPG .avi that `cv2.VideoCapture` plays back.
"""

from firmware_sim.camera.capture import (
    VirtualCamera,
    VirtualCameraDevice,
    device_registered,
    open_sim_url,
    register_device,
    scenario_from_query,
    torn_frame,
    unregister_device,
)
from firmware_sim.camera.scene import (
    SYMBOLOGIES,
    Scenario,
    SceneRenderer,
    code_modules,
    scenario_fields,
    write_video,
)
from firmware_sim.camera.stream import CameraStreamServer

__all__ = [
    "SYMBOLOGIES",
    "CameraStreamServer",
    "Scenario",
    "SceneRenderer",
    "VirtualCamera",
    "VirtualCameraDevice",
    "code_modules",
    "device_registered",
    "open_sim_url",
    "register_device",
    "scenario_fields",
    "scenario_from_query",
    "torn_frame",
    "unregister_device",
    "write_video",
]
