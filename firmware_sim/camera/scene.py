"""The scene in front of a till camera: a counter where a customer holds up a phone showing a code.

Frames are BGR uint8 numpy arrays (640×480, 1280×720 or any size), deterministic for a
(scenario, seed) pair; `write_video` writes a scene to an MJPG .avi that `cv2.VideoCapture`
plays back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import segno

SYMBOLOGIES = ("qr", "ean13", "ean8", "code128", "code39")
MIN_SIDE, MAX_SIDE = 64, 4096  # frame sides in pixels
SCREEN_WHITE = 232  # a phone screen at full brightness, as the camera sees it
CODE_DARK = 24  # the darkest a dark module gets at contrast 1.0
_NOISE_FIELDS = 4


@dataclass(frozen=True, slots=True)
class Scenario:
    """What happens in front of the camera.

    The phone comes in from below over `move_s`, is held (with a little hand jitter) from
    `show_from_s` to `show_until_s`, then is taken away. After `duration_s` the scene starts over
    if `loop`, otherwise the empty counter stays in view (a live camera never ends).
    """

    payload: str | None = "PLQ1.0123456789abcdef0123456789abcdef.1700000000.ABCDEFGHIJKLMNOP"
    symbology: str = "qr"  # "qr", "ean13", "ean8", "code128"
    width: int = 1280
    height: int = 720
    fps: float = 15.0
    duration_s: float = 4.0
    show_from_s: float = 0.5
    show_until_s: float = 3.0
    move_s: float = 0.3
    code_size: float = (
        0.3  # side of the code (its width for barcodes) as a fraction of frame height
    )
    center: tuple[float, float] = (0.5, 0.5)  # where the code is held, in frame fractions
    angle_deg: float = 0.0  # in-plane rotation
    perspective: float = 0.0  # 0…0.5: the phone turned away about its vertical axis
    blur: float = 0.0  # Gaussian sigma in pixels (defocus)
    noise: float = 0.0  # sensor noise, standard deviation in grey levels
    contrast: float = 1.0  # 1.0 black on white … 0.2 a dim screen under glare
    jitter_px: float = 2.0
    loop: bool = False

    def __post_init__(self) -> None:
        """Refuse a scene that cannot be filmed, naming the setting, before any frame is drawn."""
        problems = []
        if self.symbology not in SYMBOLOGIES:
            problems.append(f"symbology {self.symbology!r} is not one of {', '.join(SYMBOLOGIES)}")
        if not (MIN_SIDE <= self.width <= MAX_SIDE and MIN_SIDE <= self.height <= MAX_SIDE):
            size = f"{self.width}x{self.height}"
            problems.append(f"frame {size} is not {MIN_SIDE}..{MAX_SIDE} pixels a side")
        if not 0 < self.fps <= 240:
            problems.append(f"fps {self.fps:g} is not in (0, 240]")
        if not self.duration_s > 0 or self.move_s < 0:
            problems.append("duration must be positive and the move time not negative")
        if not 0 < self.code_size <= 1:
            problems.append(f"code size {self.code_size:g} is not a fraction of the frame (0, 1]")
        if not 0 <= self.perspective <= 0.5:
            problems.append(f"perspective {self.perspective:g} is not in 0..0.5")
        if not 0 < self.contrast <= 1:
            problems.append(f"contrast {self.contrast:g} is not in (0, 1]")
        if self.blur < 0 or self.noise < 0 or self.jitter_px < 0:
            problems.append("blur, noise and jitter cannot be negative")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def frame_count(self) -> int:
        return max(1, round(self.duration_s * self.fps))

    def shows_code_at(self, index: int) -> bool:
        """Whether frame `index` holds the code fully in place (not entering or leaving)."""
        t = self._scene_time(index)
        return (
            self.payload is not None
            and self.show_from_s + self.move_s <= t < self.show_until_s - self.move_s
        )

    def _scene_time(self, index: int) -> float:
        t = index / self.fps
        return t % self.duration_s if self.loop else t


class SceneRenderer:
    """Renders frame `index` of a scenario; the background and the phone are built once."""

    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        self.scenario = scenario
        self.seed = seed
        rng = np.random.default_rng(seed)
        self._background = _counter_background(scenario.width, scenario.height, rng)
        self._phone = _phone_sprite(scenario) if scenario.payload is not None else None
        self._hand_colour = tuple(int(c) for c in rng.integers([90, 130, 170], [120, 160, 215]))
        self._noise: list[np.ndarray] = []
        if scenario.noise > 0:
            noise_rng = np.random.default_rng([seed, 7])
            shape = (scenario.height, scenario.width, 3)
            for _ in range(_NOISE_FIELDS):
                field_ = noise_rng.standard_normal(shape, dtype=np.float32) * scenario.noise
                self._noise.append(np.clip(field_, -127, 127).astype(np.int16))

    def frame(self, index: int) -> np.ndarray:
        s = self.scenario
        frame = self._background.copy()
        offset = self._phone_offset(index)
        if self._phone is not None and offset is not None:
            self._draw_held_phone(frame, offset, index)
        if s.blur > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), s.blur)
        if self._noise:
            noise = self._noise[index % _NOISE_FIELDS]
            shift = int(np.random.default_rng([self.seed, index]).integers(0, s.width))
            noisy = frame.astype(np.int16) + np.roll(noise, shift, axis=1)
            frame = np.clip(noisy, 0, 255).astype(np.uint8)
        return frame

    def _phone_offset(self, index: int) -> tuple[float, float] | None:
        """Where the phone is relative to its held position (None: out of view)."""
        s = self.scenario
        t = s._scene_time(index)
        if s.payload is None or not s.show_from_s <= t < s.show_until_s:
            return None
        below = s.height * 1.1
        if t < s.show_from_s + s.move_s:
            progress = (t - s.show_from_s) / s.move_s
            return 0.0, below * (1 - progress) ** 2
        if t >= s.show_until_s - s.move_s:
            progress = (t - (s.show_until_s - s.move_s)) / s.move_s
            return 0.0, below * progress**2
        rng = np.random.default_rng([self.seed, index, 1])
        jx, jy = rng.normal(0, s.jitter_px, 2) if s.jitter_px > 0 else (0.0, 0.0)
        return float(jx), float(jy)

    def _draw_held_phone(self, frame: np.ndarray, offset: tuple[float, float], index: int) -> None:
        s = self.scenario
        assert self._phone is not None
        sprite, mask = self._phone
        h, w = sprite.shape[:2]
        cx = s.center[0] * s.width + offset[0]
        cy = s.center[1] * s.height + offset[1]
        corners = _held_corners(w, h, cx, cy, s.angle_deg, s.perspective)
        # The hand: a skin-coloured blob under the phone's lower edge.
        bottom = (corners[2] + corners[3]) / 2
        hand_axes = (int(w * 0.55), int(h * 0.22))
        cv2.ellipse(
            frame,
            (int(bottom[0]), int(bottom[1])),
            hand_axes,
            s.angle_deg,
            0,
            360,
            self._hand_colour,
            -1,
            cv2.LINE_AA,
        )
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        x0 = max(0, math.floor(corners[:, 0].min()) - 2)
        y0 = max(0, math.floor(corners[:, 1].min()) - 2)
        x1 = min(s.width, math.ceil(corners[:, 0].max()) + 2)
        y1 = min(s.height, math.ceil(corners[:, 1].max()) + 2)
        if x1 <= x0 or y1 <= y0:
            return
        matrix = cv2.getPerspectiveTransform(src, (corners - [x0, y0]).astype(np.float32))
        size = (x1 - x0, y1 - y0)
        warped = cv2.warpPerspective(sprite, matrix, size, flags=cv2.INTER_AREA)
        alpha = cv2.warpPerspective(mask, matrix, size, flags=cv2.INTER_LINEAR)
        roi = frame[y0:y1, x0:x1]
        a = alpha.astype(np.float32)[..., None] / 255.0
        roi[:] = (warped * a + roi * (1.0 - a)).astype(np.uint8)


def _held_corners(
    w: int, h: int, cx: float, cy: float, angle_deg: float, perspective: float
) -> np.ndarray:
    """The phone's four corners in the frame: turned away by `perspective`, rotated, placed."""
    p = min(max(perspective, 0.0), 0.6)
    half_w, half_h = w / 2, h / 2
    corners = np.array(
        [
            [-half_w, -half_h],
            [half_w * (1 - p / 2), -half_h * (1 - p)],
            [half_w * (1 - p / 2), half_h * (1 - p)],
            [-half_w, half_h],
        ],
        dtype=np.float64,
    )
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return corners @ rotation.T + [cx, cy]


def code_modules(payload: str, symbology: str) -> np.ndarray:
    """The symbol as a 0/255 uint8 image, one pixel per module, quiet zone included."""
    if symbology == "qr":
        try:
            qr = segno.make_qr(payload, error="m")
        except segno.DataOverflowError:
            raise ValueError(f"a QR code cannot hold {len(payload.encode())} bytes") from None
        matrix = np.array(qr.matrix, dtype=np.uint8)
        return np.pad((1 - matrix) * 255, 4, constant_values=255).astype(np.uint8)
    import zxingcpp

    formats = {
        "ean13": zxingcpp.BarcodeFormat.EAN13,
        "ean8": zxingcpp.BarcodeFormat.EAN8,
        "code128": zxingcpp.BarcodeFormat.Code128,
        "code39": zxingcpp.BarcodeFormat.Code39,
    }
    if symbology not in formats:
        raise ValueError(f"unknown symbology {symbology!r}; one of qr, {', '.join(formats)}")
    try:
        barcode = zxingcpp.create_barcode(payload, formats[symbology])
    except ValueError as exc:  # zxing-cpp names the offending character
        raise ValueError(f"{symbology} cannot encode {payload!r}: {exc}") from None
    row = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=True))
    return np.ascontiguousarray(row[row.shape[0] // 2 : row.shape[0] // 2 + 1, :])


def _phone_sprite(s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """A phone (bezel, bright screen, the code on it) upright, and its alpha mask."""
    assert s.payload is not None
    modules = code_modules(s.payload, s.symbology)
    code_w = max(8, round(s.code_size * s.height))
    code_h = code_w if s.symbology == "qr" else max(8, round(code_w * 0.45))
    code = cv2.resize(modules, (code_w, code_h), interpolation=cv2.INTER_AREA)
    dark = SCREEN_WHITE - s.contrast * (SCREEN_WHITE - CODE_DARK)
    code = (dark + (code.astype(np.float32) / 255.0) * (SCREEN_WHITE - dark)).astype(np.uint8)
    screen_w = round(code_w / 0.82)
    screen_h = max(round(screen_w * 1.9), code_h + 2 * (screen_w - code_w))
    bezel = max(3, round(screen_w * 0.05))
    phone_w, phone_h = screen_w + 2 * bezel, screen_h + 4 * bezel
    sprite = np.zeros((phone_h, phone_w, 3), dtype=np.uint8)
    sprite[:] = (28, 26, 30)
    sy, sx = 2 * bezel, bezel
    sprite[sy : sy + screen_h, sx : sx + screen_w] = SCREEN_WHITE
    # A header bar and a bit of text above the code, like a loyalty app's card screen.
    bar_h = max(2, screen_h // 12)
    sprite[sy : sy + bar_h, sx : sx + screen_w] = (60, 140, 40)
    cy = sy + (screen_h - code_h) // 2
    cx = sx + (screen_w - code_w) // 2
    sprite[cy : cy + code_h, cx : cx + code_w] = code[..., None]
    mask = np.zeros((phone_h, phone_w), dtype=np.uint8)
    radius = max(2, phone_w // 8)
    cv2.rectangle(mask, (radius, 0), (phone_w - 1 - radius, phone_h - 1), 255, -1)
    cv2.rectangle(mask, (0, radius), (phone_w - 1, phone_h - 1 - radius), 255, -1)
    for px, py in (
        (radius, radius),
        (phone_w - 1 - radius, radius),
        (radius, phone_h - 1 - radius),
        (phone_w - 1 - radius, phone_h - 1 - radius),
    ):
        cv2.circle(mask, (px, py), radius, 255, -1, cv2.LINE_AA)
    return sprite, mask


def _counter_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A till counter: a wall, a wooden counter top, a few products and a card terminal."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    wall_top = rng.integers(150, 200, 3).astype(np.float32)
    wall_bottom = wall_top * 0.75
    horizon = int(height * 0.62)
    ramp = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
    frame[:horizon] = (wall_top * (1 - ramp) + wall_bottom * ramp)[:, None, :].astype(np.uint8)
    wood = np.array([40, 80, 130], dtype=np.float32)
    grain = (np.sin(np.arange(width, dtype=np.float32) / rng.uniform(9, 17)) * 10)[None, :, None]
    rows = np.linspace(1.0, 0.8, height - horizon, dtype=np.float32)[:, None, None]
    frame[horizon:] = np.clip(wood * rows + grain, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 6))):
        bw = int(rng.integers(width // 16, width // 7))
        bh = int(rng.integers(height // 8, height // 3))
        bx = int(rng.integers(0, width - bw))
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        cv2.rectangle(frame, (bx, horizon - bh), (bx + bw, horizon + height // 40), colour, -1)
        cv2.rectangle(frame, (bx, horizon - bh), (bx + bw, horizon + height // 40), (20, 20, 20), 1)
    tx, ty = int(width * 0.78), int(height * 0.7)
    cv2.rectangle(frame, (tx, ty), (tx + width // 10, ty + height // 5), (35, 35, 35), -1)
    cv2.rectangle(
        frame, (tx + 8, ty + 8), (tx + width // 10 - 8, ty + height // 14), (90, 120, 90), -1
    )
    return frame


# --- video files -----------------------------------------------------------------------------


def write_video(
    path: str | Path, scenario: Scenario | None = None, seed: int = 0, *, fourcc: str = "MJPG"
) -> int:
    """Write the scene (one pass of `duration_s`) to a video file; returns the frame count.

    MJPG in an .avi is what every OpenCV build can both write and read back.
    """
    scenario = scenario or Scenario()
    renderer = SceneRenderer(scenario, seed)
    writer = cv2.VideoWriter(
        str(path),
        cv2.VideoWriter.fourcc(*fourcc),
        scenario.fps,
        (scenario.width, scenario.height),
    )
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {fourcc} video to {path}")
    try:
        for index in range(scenario.frame_count):
            writer.write(renderer.frame(index))
    finally:
        writer.release()
    return scenario.frame_count


def scenario_fields() -> list[str]:
    """The names a scenario can be tuned by (for CLI help)."""
    return [f.name for f in fields(Scenario)]
