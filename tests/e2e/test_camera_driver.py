"""The camera driver on the virtual camera (through the `sim` scheme) and on video files."""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest
import zxingcpp

from drivers.camera import CameraReader, register_capture_scheme, unregister_capture_scheme
from drivers.reading import Reading
from firmware_sim.camera import (
    Scenario,
    SceneRenderer,
    VirtualCameraDevice,
    open_sim_url,
    register_device,
    unregister_device,
    write_video,
)
from tests.serving import SAFETY_S

PAYLOAD = "PLQ1.0123456789abcdef0123456789abcdef.1700000000.ABCDEFGHIJKLMNOP"


def wait_for(condition: Callable[[], bool], timeout: float = SAFETY_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(autouse=True)
def sim_scheme() -> Iterator[None]:
    """What the composition root does: let drivers open sim:// through firmware_sim."""
    register_capture_scheme("sim", open_sim_url)
    yield
    unregister_capture_scheme("sim")


@pytest.fixture
def readers() -> Iterator[list[CameraReader]]:
    started: list[CameraReader] = []
    yield started
    for reader in started:
        reader.stop(timeout=3.0)


def start(
    readers: list[CameraReader], source: str, **kwargs: object
) -> tuple[CameraReader, list[Reading]]:
    got: list[Reading] = []
    reader = CameraReader(source, on_payload=got.append, **kwargs).start()  # type: ignore[arg-type]
    readers.append(reader)
    return reader, got


def test_a_held_qr_is_reported_once(readers: list[CameraReader]) -> None:
    url = (
        f"sim://camera?qr={PAYLOAD}&width=640&height=480&fps=20"
        "&show_from=0.1&show_until=60&duration=60"
    )
    reader, got = start(readers, url, debounce_s=3.0)
    assert wait_for(lambda: len(got) == 1), reader.stats()
    # The code stays in view: ten more frames decode it, and it is still one reading. (Counted in
    # frames, not seconds, so a busy machine that decodes slowly proves the same thing; decode
    # speed is a benchmark's figure: bench/decode.py.)
    seen = reader.stats().frames_decoded
    assert wait_for(lambda: reader.stats().frames_decoded >= seen + 10), reader.stats()
    assert [(r.payload, r.symbology, r.source) for r in got] == [(PAYLOAD, "qr", "camera")]
    stats = reader.stats()
    assert stats.connected and stats.readings == 1
    assert stats.decode_ms_median > 0


def test_a_scene_without_a_code_reports_nothing(readers: list[CameraReader]) -> None:
    reader, got = start(readers, "sim://camera?none=&width=640&height=480&fps=20")
    assert wait_for(lambda: reader.stats().frames_decoded >= 15)
    assert got == []
    assert reader.stats().readings == 0


def test_a_barcode_is_reported_with_its_symbology(readers: list[CameraReader]) -> None:
    url = "sim://camera?ean13=4601234567893&size=0.45&width=640&height=480&fps=20&show_from=0"
    reader, got = start(readers, url)
    assert wait_for(lambda: len(got) == 1), reader.stats()
    assert (got[0].payload, got[0].symbology) == ("4601234567893", "ean13")


def test_a_camera_that_fails_and_comes_back_reconnects(readers: list[CameraReader]) -> None:
    # The code is held from 1.2 s on the device's clock, after the camera has been away and back.
    scenario = Scenario(
        payload=PAYLOAD,
        width=640,
        height=480,
        fps=20,
        show_from_s=1.2,
        show_until_s=30,
        duration_s=60,
    )
    device = VirtualCameraDevice(scenario, seed=4)
    register_device("lane-9", device)
    try:
        reader, got = start(
            readers, "sim://camera/lane-9", backoff_initial_s=0.05, backoff_max_s=0.2
        )
        assert wait_for(lambda: reader.stats().connected)
        device.unplug()
        assert wait_for(lambda: not reader.stats().connected)
        assert "stopped delivering frames" in (reader.stats().last_error or "")
        time.sleep(0.3)  # reopen attempts fail while unplugged
        assert not reader.stats().connected
        device.replug()
        assert wait_for(lambda: reader.stats().connected)
        assert wait_for(lambda: len(got) == 1), reader.stats()
        assert got[0].payload == PAYLOAD
        assert reader.stats().reconnects == 1
    finally:
        unregister_device("lane-9")


def test_without_the_sim_scheme_registered_the_error_says_how(readers: list[CameraReader]) -> None:
    unregister_capture_scheme("sim")
    reader, _ = start(readers, "sim://camera", backoff_initial_s=0.05)
    assert wait_for(lambda: reader.stats().last_error is not None)
    assert "register_capture_scheme('sim'" in (reader.stats().last_error or "")


def test_a_scene_written_to_mjpg_avi_plays_back(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    scenario = Scenario(payload=PAYLOAD, width=640, height=480, fps=10, duration_s=2.0)
    assert write_video(path, scenario, seed=1) == 20
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.isOpened()
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 20
        assert capture.get(cv2.CAP_PROP_FPS) == 10
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    assert len(frames) == 20 and frames[0].shape == (480, 640, 3)
    held = [i for i in range(20) if scenario.shows_code_at(i)]
    assert [r.text for r in zxingcpp.read_barcodes(frames[held[len(held) // 2]])] == [PAYLOAD]
    assert zxingcpp.read_barcodes(frames[0]) == []


def test_a_file_source_plays_once_or_loops(tmp_path: Path, readers: list[CameraReader]) -> None:
    path = tmp_path / "clip.avi"
    scenario = Scenario(
        payload=PAYLOAD,
        width=640,
        height=480,
        fps=25,
        duration_s=0.8,
        show_from_s=0.0,
        show_until_s=0.6,
        move_s=0.1,
    )
    write_video(path, scenario, seed=1)

    # Played once, the code is in view from the first frame to the 15th: one report, however
    # slowly a busy machine decodes (a short debounce would expire between two slow frames).
    once, got_once = start(readers, str(path), debounce_s=SAFETY_S)
    assert wait_for(lambda: once.stats().ended)
    assert [r.payload for r in got_once] == [PAYLOAD]

    looped, got_looped = start(readers, str(path), debounce_s=0.1, loop=True)
    assert wait_for(lambda: len(got_looped) >= 2), looped.stats()
    assert not looped.stats().ended
    assert {r.payload for r in got_looped} == {PAYLOAD}


class SlowDecoder:
    """zxing behind a decoder that takes 150 ms a frame: far slower than the camera's 20 fps."""

    name = "slow"

    def __init__(self) -> None:
        from drivers.decoders import load_decoder

        self._inner = load_decoder("zxing")

    def decode(self, frame):  # type: ignore[no-untyped-def]
        time.sleep(0.15)
        return self._inner.decode(frame)


def test_a_slow_decoder_reads_the_newest_frame_not_a_backlog(readers: list[CameraReader]) -> None:
    scenario = Scenario(
        payload=PAYLOAD,
        width=640,
        height=480,
        fps=20,
        show_from_s=1.5,
        show_until_s=30,
        duration_s=60,
        move_s=0.1,
    )
    device = VirtualCameraDevice(scenario, seed=2)
    register_device("slow", device)
    try:
        reader, got = start(readers, "sim://camera/slow", decoder=SlowDecoder())
        assert wait_for(lambda: len(got) == 1), reader.stats()
        # 20 frames/s in, under 7 decoded: a queue would fall further behind every second; the
        # reader drops what it had no time for instead. (How fresh the reading is, in ms, is a
        # figure for bench/lane_latency.py: on a busy machine every decode is slower.)
        stats = reader.stats()
        assert stats.frames_skipped > stats.frames_decoded
    finally:
        unregister_device("slow")


def test_sim_camera_command_writes_a_decodable_clip(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pos_loyalty.cli.app import app

    out = tmp_path / "clip.avi"
    args = ["sim", "camera", "--qr", "HELLO-CLI", "--out", str(out), "--width", "640"]
    args += ["--height", "480", "--fps", "10", "--duration", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 20 frames" in result.output
    capture = cv2.VideoCapture(str(out))
    try:
        texts: set[str] = set()
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            texts.update(r.text for r in zxingcpp.read_barcodes(frame))
    finally:
        capture.release()
    assert texts == {"HELLO-CLI"}


class MjpegCamera:
    """An IP camera: the scene as an MJPEG stream (multipart/x-mixed-replace) over HTTP, on a
    fixed port so it can be switched off and on again."""

    def __init__(self, scenario: Scenario) -> None:
        self.renderer = SceneRenderer(scenario, seed=5)
        self.fps = scenario.fps
        self.port = 0
        self._server: socketserver.ThreadingTCPServer | None = None
        self._connections: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def switch_on(self) -> None:
        camera = self

        class Stream(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                camera._connections.append(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                with contextlib.suppress(OSError, ValueError):
                    while camera._server is not None:
                        jpeg = cv2.imencode(".jpg", camera.renderer.frame(index))[1].tobytes()
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        index += 1
                        time.sleep(1 / camera.fps)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", self.port), Stream)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def switch_off(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._connections.clear()


def test_an_http_camera_is_read_and_reconnected_after_it_goes_away(
    readers: list[CameraReader],
) -> None:
    scenario = Scenario(
        payload=PAYLOAD, width=640, height=480, fps=20, show_from_s=0.0, show_until_s=1e6
    )
    camera = MjpegCamera(scenario)
    camera.switch_on()
    try:
        reader, got = start(readers, camera.url, backoff_initial_s=0.1, backoff_max_s=0.3)
        assert wait_for(lambda: len(got) == 1), reader.stats()
        assert got[0].payload == PAYLOAD and got[0].source == "camera"
        assert wait_for(lambda: reader.stats().fps > 5), reader.stats()
        assert reader.stats().decode_ms_median > 0

        camera.switch_off()  # power cut at the camera
        assert wait_for(lambda: not reader.stats().connected), reader.stats()
        camera.switch_on()
        assert wait_for(lambda: reader.stats().connected), reader.stats()
        assert wait_for(lambda: reader.stats().reconnects >= 1)
        grabbed = reader.stats().frames_grabbed
        assert wait_for(lambda: reader.stats().frames_grabbed > grabbed + 5)
    finally:
        camera.switch_off()


def test_a_device_index_without_a_camera_is_retried_with_the_error_kept(
    readers: list[CameraReader],
) -> None:
    reader, got = start(readers, "63", backoff_initial_s=0.05, backoff_max_s=0.1)
    assert wait_for(lambda: reader.stats().last_error == "cannot open 63")
    assert not reader.stats().connected and got == []


def test_an_rtsp_camera_that_refuses_is_retried_without_showing_its_password(
    readers: list[CameraReader], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the camera is off
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://admin:s3cret@127.0.0.1:{port}/stream1"
    reader, got = start(readers, url, backoff_initial_s=0.05, backoff_max_s=0.1)
    assert wait_for(lambda: reader.stats().last_error is not None)
    stats = reader.stats()
    assert stats.source == f"rtsp://admin:***@127.0.0.1:{port}/stream1"
    assert stats.last_error == f"cannot open {stats.source}" and not stats.connected
    assert "s3cret" not in caplog.text and got == []
