"""Camera decode time and detection rate per backend, on a fixed simulated set of 1280×720 frames.

Cases: clean, rotated (with perspective), blurred, low contrast (with sensor noise), small, an
EAN-13 barcode, no code. Each backend decodes every frame `--repeat` times; times are per frame.
References measured in the same run: raw zxing-cpp (`zxingcpp.read_barcodes(frame)` with its
defaults) and pyzbar on every full frame. Targets for the default path (the driver's `zxing`
decoder, as the camera loop calls it): median ≤ 1.5× raw zxing-cpp, ≥ 8× faster than pyzbar,
detection ≥ raw zxing-cpp.

    .venv/bin/python bench/decode.py [--frames-per-case 6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stats, console, results_table, verdict
from drivers.decoders import DecoderUnavailable, load_decoder
from firmware_sim.camera import Scenario, SceneRenderer

PAYLOAD = "PLQ1.0123456789abcdef0123456789abcdef.1700000000.ABCDEFGHIJKLMNOP"
EAN = "4601234567893"
HELD_FRAME = 20  # inside the default scenario's hold window

TARGET_VS_RAW_ZXING = 1.5
TARGET_VS_PYZBAR = 8.0


@dataclass(frozen=True)
class Sample:
    case: str
    frame: np.ndarray
    expected: str | None


def case_scenarios(i: int) -> dict[str, Scenario]:
    """The i-th variant of every case: position, angle and degradation vary with i."""
    base = Scenario(center=(0.35 + 0.06 * (i % 5), 0.45 + 0.03 * (i % 3)), jitter_px=0)
    return {
        "clean": base,
        "rotated": replace(base, angle_deg=15 + 7 * i, perspective=0.1 + 0.03 * (i % 5)),
        "blurred": replace(base, blur=1.0 + 0.3 * (i % 6)),
        "low contrast": replace(base, contrast=0.35 - 0.03 * (i % 5), noise=4 + i % 4),
        "small": replace(base, code_size=0.08 + 0.01 * (i % 4)),
        "barcode": replace(base, payload=EAN, symbology="ean13", code_size=0.4 + 0.02 * (i % 4)),
        "no code": replace(base, payload=None),
    }


def build_set(per_case: int) -> list[Sample]:
    samples = []
    for i in range(per_case):
        for case, scenario in case_scenarios(i).items():
            frame = SceneRenderer(scenario, seed=100 + i).frame(HELD_FRAME)
            samples.append(Sample(case, frame, scenario.payload))
    return samples


Decode = Callable[[np.ndarray], list[str]]


def backends() -> dict[str, Decode | str]:
    """name → decode function (or why it is unavailable)."""
    found: dict[str, Decode | str] = {}
    for name in ("zxing", "zbar", "opencv"):
        try:
            decoder = load_decoder(name)
        except DecoderUnavailable as exc:
            found[f"driver {name}"] = str(exc)
            continue
        found[f"driver {name}" + (" (default)" if name == "zxing" else "")] = lambda f, d=decoder: [
            s.text for s in d.decode(f)
        ]
    import zxingcpp

    found["raw zxing-cpp"] = lambda f: [r.text for r in zxingcpp.read_barcodes(f)]
    try:
        from pyzbar import pyzbar

        found["raw pyzbar, full frame"] = lambda f: [
            r.data.decode("utf-8", errors="replace") for r in pyzbar.decode(f)
        ]
    except ImportError as exc:
        found["raw pyzbar, full frame"] = f"pyzbar unavailable: {exc} (apt-get install libzbar0)"
    return found


@dataclass
class Result:
    stats: Stats
    detected: int
    expected: int
    false_reads: int
    per_case: dict[str, tuple[int, int]]


def run(decode: Decode, samples: list[Sample], repeat: int) -> Result:
    decode(samples[0].frame)  # warm up (lazy initialisation inside the libraries)
    times: list[float] = []
    detected = expected = false_reads = 0
    per_case: dict[str, tuple[int, int]] = {}
    for sample in samples:
        texts: list[str] = []
        for _ in range(repeat):
            started = time.perf_counter()
            texts = decode(sample.frame)
            times.append(time.perf_counter() - started)
        hit = sample.expected is not None and sample.expected in texts
        false_reads += sum(1 for t in texts if t != sample.expected)
        if sample.expected is not None:
            expected += 1
            detected += hit
        got, total = per_case.get(sample.case, (0, 0))
        per_case[sample.case] = (got + (hit or (sample.expected is None and not texts)), total + 1)
    return Result(Stats.of(times), detected, expected, false_reads, per_case)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-per-case", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    samples = build_set(args.frames_per_case)
    cases = list(case_scenarios(0))
    console.print(
        f"{len(samples)} frames of 1280×720 ({args.frames_per_case} per case: {', '.join(cases)}),"
        f" each decoded {args.repeat}×"
    )
    results: dict[str, Result] = {}
    unavailable: dict[str, str] = {}
    for name, decode in backends().items():
        if isinstance(decode, str):
            unavailable[name] = decode
            continue
        results[name] = run(decode, samples, args.repeat)

    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                f"{r.stats.median_ms:.2f}",
                f"{r.stats.p99_ms:.2f}",
                f"{r.stats.mean_ms:.2f}",
                f"{r.detected}/{r.expected} ({100 * r.detected / r.expected:.0f}%)",
                str(r.false_reads),
            ]
        )
    for name, why in unavailable.items():
        rows.append([name, "—", "—", "—", why, "—"])
    results_table(
        "Decode time per 1280×720 frame (ms) and detection",
        ["backend", "median", "p99", "mean", "detected", "false reads"],
        rows,
    )
    case_rows = [
        [case] + [f"{r.per_case[case][0]}/{r.per_case[case][1]}" for r in results.values()]
        for case in cases
    ]
    results_table("Correct per case (no code: nothing read)", ["case", *results], case_rows)

    default = results.get("driver zxing (default)")
    raw = results.get("raw zxing-cpp")
    zbar = results.get("raw pyzbar, full frame")
    if default is None or raw is None:
        console.print("[red]the default decoder or zxing-cpp is unavailable; no verdict[/]")
        return
    vs_raw = default.stats.median_ms / raw.stats.median_ms
    target_rows = [
        [
            "median vs raw zxing-cpp",
            f"{vs_raw:.2f}× ({default.stats.median_ms:.2f} vs {raw.stats.median_ms:.2f} ms)",
            f"≤ {TARGET_VS_RAW_ZXING}×",
            verdict(vs_raw <= TARGET_VS_RAW_ZXING),
        ],
        [
            "detection vs raw zxing-cpp",
            f"{default.detected} vs {raw.detected} of {raw.expected}",
            "≥ raw",
            verdict(default.detected >= raw.detected),
        ],
    ]
    if zbar is not None:
        for label, ours, theirs in (
            ("speed-up vs pyzbar (median)", default.stats.median_ms, zbar.stats.median_ms),
            ("speed-up vs pyzbar (mean)", default.stats.mean_ms, zbar.stats.mean_ms),
        ):
            target_rows.append(
                [
                    label,
                    f"{theirs / ours:.1f}× ({ours:.2f} vs {theirs:.2f} ms)",
                    f"≥ {TARGET_VS_PYZBAR:g}×",
                    verdict(theirs / ours >= TARGET_VS_PYZBAR),
                ]
            )
    else:
        target_rows.append(["speed-up vs pyzbar", "pyzbar unavailable", "≥ 8×", "—"])
    results_table("Default path against its targets", ["what", "figure", "target", ""], target_rows)


if __name__ == "__main__":
    main()
