"""Each camera decoder backend says what to install when its library cannot be loaded."""

from __future__ import annotations

import sys
import types

import pytest

from drivers.camera import CameraReader
from drivers.decoders import DecoderUnavailable, load_decoder


def test_opencv_without_the_aruco_qr_detector_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cv2", types.ModuleType("cv2"))  # an OpenCV before 4.8
    with pytest.raises(DecoderUnavailable, match=r"OpenCV 4\.8.*pip install opencv-python"):
        load_decoder("opencv")


def test_opencv_missing_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(DecoderUnavailable, match="pip install opencv-python-headless"):
        load_decoder("opencv")


def test_a_camera_fails_at_construction_not_mid_shift(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader loads its backend when made, so `serve` can report it before any frame."""
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    with pytest.raises(DecoderUnavailable, match="pip install zxing-cpp"):
        CameraReader("sim://camera", decoder="zxing")
