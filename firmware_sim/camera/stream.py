"""The virtual camera as a network camera: its frames as an MJPEG stream over HTTP.

`GET /video.mjpg` (any path) answers `multipart/x-mixed-replace` with one JPEG part per frame at
the scene's frame rate, which is what IP cameras serve and what `cv2.VideoCapture("http://…")`
(FFmpeg) opens. While the device is unplugged the streams end and new requests get 503, so a
driver sees a camera that went away and comes back. Each client gets its own capture on the
device, so what the device is shown, and its faults, reach every client.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import cv2

from firmware_sim.camera.capture import VirtualCameraDevice

log = logging.getLogger(__name__)

BOUNDARY = "frame"


class CameraStreamServer:
    """Serves `device` as MJPEG over HTTP on `host:port` (0 picks a free port)."""

    def __init__(
        self, device: VirtualCameraDevice, host: str = "127.0.0.1", port: int = 0, quality: int = 85
    ) -> None:
        self.device = device
        self.quality = quality
        self._stopping = threading.Event()
        self.clients = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{host}:{self.port}/video.mjpg"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="camera-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(2.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stream(self, write: Any) -> int:
        """Write frames to one client until the device goes away or the client leaves; returns
        how many frames it got."""
        capture = self.device.open()
        sent = 0
        with self._lock:
            self.clients += 1
        try:
            while not self._stopping.is_set():
                ok, frame = capture.read()
                if not ok or frame is None:
                    break  # unplugged: the stream ends, as a camera's does when it goes away
                encoded, jpeg = cv2.imencode(
                    ".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality]
                )
                if not encoded:
                    continue
                data = jpeg.tobytes()
                header = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode("ascii")
                try:
                    write(header + data + b"\r\n")
                except OSError:
                    break  # the client went away
                sent += 1
        finally:
            capture.release()
            with self._lock:
                self.clients -= 1
        return sent


def _handler_for(server: CameraStreamServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the stream ends when the connection closes

        def do_GET(self) -> None:
            if not server.device.plugged:
                self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "camera unplugged")
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()

            def write(data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

            server.stream(write)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("camera http: " + format, *args)

    return Handler
