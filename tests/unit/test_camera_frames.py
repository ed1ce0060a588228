"""Virtual camera frames: deterministic, the right shape, and decodable to the payload shown."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp

from drivers.decoders import DecoderUnavailable, load_decoder
from firmware_sim.camera import Scenario, SceneRenderer, VirtualCamera, scenario_from_query

PAYLOAD = "PLQ1.0123456789abcdef0123456789abcdef.1700000000.ABCDEFGHIJKLMNOP"
HELD = 20  # frame index inside the default scenario's hold window (15 fps, 0.8 s … 2.7 s)


def _zxing_texts(frame: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(frame)]


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720)])
def test_frames_are_bgr_at_the_configured_size(width: int, height: int) -> None:
    frame = SceneRenderer(Scenario(width=width, height=height), seed=1).frame(HELD)
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8


def test_same_seed_same_frames_other_seed_other_scene() -> None:
    scenario = Scenario(noise=4.0)
    a = SceneRenderer(scenario, seed=3).frame(HELD)
    b = SceneRenderer(scenario, seed=3).frame(HELD)
    c = SceneRenderer(scenario, seed=4).frame(HELD)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(),
        Scenario(width=640, height=480),
        Scenario(angle_deg=30, perspective=0.25),
        Scenario(blur=1.2, noise=5.0),
        Scenario(contrast=0.3),
        Scenario(code_size=0.15),
    ],
    ids=["clean", "vga", "rotated", "blur-noise", "low-contrast", "small"],
)
def test_a_held_qr_decodes_to_its_payload(scenario: Scenario) -> None:
    frame = SceneRenderer(scenario, seed=1).frame(HELD)
    assert _zxing_texts(frame) == [PAYLOAD]


def test_the_code_is_only_there_while_held() -> None:
    scenario = Scenario(show_from_s=1.0, show_until_s=2.0, duration_s=3.0, fps=10)
    renderer = SceneRenderer(scenario, seed=1)
    assert _zxing_texts(renderer.frame(5)) == []  # 0.5 s: not shown yet
    assert _zxing_texts(renderer.frame(15)) == [PAYLOAD]  # 1.5 s: held
    assert _zxing_texts(renderer.frame(25)) == []  # 2.5 s: taken away
    assert [scenario.shows_code_at(i) for i in (5, 15, 25)] == [False, True, False]


def test_a_held_barcode_decodes() -> None:
    scenario = Scenario(payload="4601234567893", symbology="ean13", code_size=0.45)
    results = zxingcpp.read_barcodes(SceneRenderer(scenario, seed=2).frame(HELD))
    assert [(r.text, str(r.format)) for r in results] == [("4601234567893", "EAN-13")]


def test_virtual_camera_behaves_like_video_capture() -> None:
    camera = VirtualCamera(Scenario(width=640, height=480, fps=12), seed=1, realtime=False)
    assert camera.isOpened()
    assert camera.get(cv2.CAP_PROP_FPS) == 12
    assert (camera.get(cv2.CAP_PROP_FRAME_WIDTH), camera.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        640,
        480,
    )
    ok, first = camera.read()
    ok2, second = camera.read()
    assert ok and ok2 and first is not None and second is not None and first.shape == (480, 640, 3)
    camera.release()
    assert not camera.isOpened()
    assert camera.read() == (False, None)


def test_url_query_tunes_the_scenario() -> None:
    scenario, seed, realtime = scenario_from_query("qr=HELLO&size=0.2&angle=15&seed=9&realtime=0")
    assert (scenario.payload, scenario.code_size, scenario.angle_deg) == ("HELLO", 0.2, 15.0)
    assert (seed, realtime) == (9, False)
    with pytest.raises(ValueError, match="unknown sim camera parameter 'zoom'"):
        scenario_from_query("zoom=2")


@pytest.mark.parametrize("backend", ["zxing", "zbar", "opencv"])
def test_each_decoder_backend_reads_a_clean_frame(backend: str) -> None:
    try:
        decoder = load_decoder(backend)
    except DecoderUnavailable as exc:  # zbar without the system libzbar0
        if os.environ.get("CI"):  # the bootstrap installs libzbar0: in CI this is a failure
            raise
        pytest.skip(str(exc))
    frame = SceneRenderer(Scenario(), seed=1).frame(HELD)
    assert [(s.text, s.symbology) for s in decoder.decode(frame)] == [(PAYLOAD, "qr")]
    assert decoder.decode(SceneRenderer(Scenario(payload=None), seed=1).frame(HELD)) == []


def test_default_decoder_reads_barcodes_upright_and_sideways() -> None:
    decoder = load_decoder("zxing")
    for angle in (0, 90):
        scenario = Scenario(
            payload="4601234567893", symbology="ean13", code_size=0.45, angle_deg=angle
        )
        frame = SceneRenderer(scenario, seed=2).frame(HELD)
        assert [(s.text, s.symbology) for s in decoder.decode(frame)] == [
            ("4601234567893", "ean13")
        ]


def test_a_missing_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    with pytest.raises(DecoderUnavailable, match="pip install zxing-cpp"):
        load_decoder("zxing")
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    with pytest.raises(DecoderUnavailable, match="libzbar0"):
        load_decoder("zbar")
    with pytest.raises(ValueError, match="one of zxing, zbar, opencv"):
        load_decoder("tesseract")


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"width": 0}, "frame 0x720"), ({"contrast": 0.0}, "contrast 0 "),
     ({"code_size": 1.5}, "code size 1.5"), ({"perspective": 0.9}, "perspective 0.9"),
     ({"fps": 0}, "fps 0 "), ({"symbology": "pdf417"}, "symbology 'pdf417'")],
)  # fmt: skip
def test_a_scene_that_cannot_be_filmed_is_refused_by_name(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Scenario(**changes)  # type: ignore[arg-type]


def test_a_payload_the_code_cannot_hold_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="ean13 cannot encode 'ABC'"):
        SceneRenderer(Scenario(payload="ABC", symbology="ean13"))
    with pytest.raises(ValueError, match="a QR code cannot hold 5000 bytes"):
        SceneRenderer(Scenario(payload="a" * 5000))


def test_sim_camera_command_refuses_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pos_loyalty.cli.app import app

    def said(output: str) -> str:  # the words of the error panel, however it wrapped them
        return " ".join(output.replace("│", " ").split())

    runner = CliRunner(env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})  # one line a message
    bad_code = runner.invoke(app, ["sim", "camera", "--barcode", "ABC", "--out", str(tmp_path)])
    assert bad_code.exit_code == 2 and "ean13 cannot encode 'ABC'" in said(bad_code.output)
    nowhere = tmp_path / "missing" / "clip.avi"
    unwritable = runner.invoke(app, ["sim", "camera", "--qr", "HI", "--out", str(nowhere)])
    assert unwritable.exit_code == 1 and f"cannot write {nowhere}" in said(unwritable.output)
