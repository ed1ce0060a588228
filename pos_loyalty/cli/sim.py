"""`pos-loyalty sim …`: run one simulated device on its own (printer, scanner, camera).

The simulators live in `firmware_sim` and are imported inside each command, so the core never
imports them at module level.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

sim_app = typer.Typer(help="Simulated devices, one at a time.", no_args_is_help=True)


@sim_app.command("printer")
def sim_printer(
    out: Annotated[Path, typer.Option(help="Directory for NNNN.png and NNNN.txt receipts.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Raw TCP port (0 picks a free one).")
    ] = 9100,
    profile: Annotated[
        str, typer.Option(help="python-escpos profile: paper width, code pages.")
    ] = "TM-T88V",
    paper_mm: Annotated[
        float, typer.Option(min=0, help="Roll length in mm (0 = endless).")
    ] = 80_000,
    near_end_mm: Annotated[
        float, typer.Option(min=0, help="Paper left when near-end trips.")
    ] = 1_000,
    paper_width_mm: Annotated[
        float | None, typer.Option(help="Roll width (58 or 80) if not the profile's.")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0, help="Print speed in mm/s (0 = instant; a TM-T88V does 300).")
    ] = 0.0,
    pty_link: Annotated[
        Path | None, typer.Option(help="Also offer the printer on a serial pty at this symlink.")
    ] = None,
    control: Annotated[
        Path | None,
        typer.Option(help="Take fault commands on a unix socket here (see `sim control`)."),
    ] = None,
) -> None:
    """Run a virtual ESC/POS receipt printer on HOST:PORT until Ctrl-C; each cut is a receipt.

    With --control, faults are acted out from outside: `pos-loyalty sim control PATH paper-out`
    (or cover-open, cutter-error, fix, offline, power-off, unplug, during-next KIND …; `help`).
    """
    import logging

    from firmware_sim.control import ControlServer, printer_commands
    from firmware_sim.printer import PrinterPty, PrinterServer, Receipt, VirtualPrinter

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def announce(receipt: Receipt) -> None:
        codes = [f"QR {payload}" for payload in receipt.qr_payloads] + [
            f"{code.symbology} {code.data}" for code in receipt.barcodes
        ]
        note = "" if receipt.complete else "  INCOMPLETE: the paper ran out"
        typer.echo(
            f"{out / f'{receipt.number:04d}.png'}  {len(receipt.lines)} line(s), "
            f"{receipt.length_mm:g} mm" + (f"; {', '.join(codes)}" if codes else "") + note
        )

    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").touch()
        (out / ".write-test").unlink()
    except OSError as exc:
        raise typer.BadParameter(f"cannot write receipts there: {exc}", param_hint="--out") from exc
    try:
        printer = VirtualPrinter(
            profile,
            paper_mm=paper_mm or None,
            near_end_mm=near_end_mm,
            paper_width_mm=paper_width_mm,
            print_speed_mm_s=speed,
            out_dir=out,
            keep_receipts=20,
            on_receipt=announce,
        )
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--profile") from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--paper-width-mm") from exc
    server = PrinterServer(printer, host, port)
    try:
        server.start()
    except OSError as exc:
        typer.echo(f"cannot listen on {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from exc
    serial = PrinterPty(printer, link=pty_link).start() if pty_link is not None else None
    controls = (
        ControlServer(control, printer_commands(printer)).start() if control is not None else None
    )
    dots = printer.profile.dots_per_line
    _serve_until_ctrl_c(
        f"printer {printer.profile.name} ({dots} dots, {printer.profile.dpi} dpi) on {server.url}"
        + (f" and {serial.port}" if serial else "")
        + (f"; fault control at {control}" if controls else "")
        + f"; receipts to {out}/. Ctrl-C stops.",
        server.stop,
        serial.stop if serial is not None else None,
        controls.stop if controls is not None else None,
    )
    printer.tear_off()
    typer.echo(
        f"{printer.receipt_count} receipts; {printer.dropped_bytes} bytes not printed, "
        f"{printer.lost_cuts} receipts lost to paper out"
    )


@sim_app.command("scanner")
def sim_scanner(
    link: Annotated[
        Path, typer.Option(help="Where to offer the port (a symlink to the pty).")
    ] = Path("./scanner0"),
    baud: Annotated[
        int, typer.Option(min=50, help="Line speed; bytes are paced at it (8N1).")
    ] = 9600,
    suffix: Annotated[str, typer.Option(help="none, cr, lf, crlf or tab.")] = "crlf",
    prefix: Annotated[str, typer.Option(help="Characters sent before each scan.")] = "",
    stx_etx: Annotated[bool, typer.Option("--stx-etx", help="Frame scans as STX…ETX.")] = False,
    lrc: Annotated[bool, typer.Option("--lrc", help="Append an LRC byte after ETX.")] = False,
    aim: Annotated[
        bool, typer.Option("--aim", help="Prepend the AIM symbology id (]E0 …).")
    ] = False,
    symbology: Annotated[str, typer.Option(help="Symbology of typed scans (for --aim).")] = "ean13",
    control: Annotated[
        Path | None,
        typer.Option(help="Also take commands on a unix socket here (see `sim control`)."),
    ] = None,
) -> None:
    """Plug a virtual serial scanner in at LINK and scan each line typed on stdin.

    A line is sent as a scan, except: `!swipe PAN [NAME] [YYMM] [1|2|both]` swipes a magnetic
    card, `!garble TEXT` and `!truncate TEXT` send a damaged frame, `!split TEXT` sends one scan
    in two reads half a second apart, `!repeat TEXT` the same scan five times, `!unplug` /
    `!replug` pull and reconnect the cable. End with Ctrl-D. With --control the same commands
    (scan, swipe, garble, truncate, split, repeat, unplug, replug) come on a unix socket too.
    """
    from firmware_sim.control import ControlServer, run_command, scanner_commands
    from firmware_sim.scanner import SUFFIXES, Framing, VirtualScanner

    if suffix.lower() not in SUFFIXES:
        raise typer.BadParameter(f"one of {', '.join(SUFFIXES)}", param_hint="--suffix")
    if not link.parent.is_dir():
        raise typer.BadParameter(
            f"no directory {link.parent} to put the link in", param_hint="--link"
        )
    framing = Framing(
        prefix=prefix.encode("utf-8"),
        suffix=SUFFIXES[suffix.lower()],
        stx_etx=stx_etx,
        lrc=lrc,
        aim=aim,
    )
    scanner = VirtualScanner(link, baudrate=baud, framing=framing).start()
    commands = scanner_commands(scanner, symbology)
    controls = ControlServer(control, commands).start() if control is not None else None
    typer.echo(f"scanner plugged in at {link} ({baud} baud, suffix {suffix}); type lines to scan")
    try:
        for line in sys.stdin:
            text = line.rstrip("\r\n")
            if not text:
                continue
            if text.startswith("!"):
                answer = run_command(commands, text[1:])
            else:
                answer = run_command(commands, f"scan {shlex.quote(text)}")
            if answer.startswith("error"):
                typer.echo(answer.removeprefix("error "), err=True)
            elif text.startswith("!unplug"):
                typer.echo(f"unplugged ({link} removed)")
            elif text.startswith("!replug"):
                typer.echo(f"plugged back in at {link}")
    except KeyboardInterrupt:
        pass
    finally:
        if controls is not None:
            controls.stop()
        scanner.close()


@sim_app.command("control")
def sim_control(
    socket_path: Annotated[Path, typer.Argument(help="The device's control socket.")],
    command: Annotated[list[str], typer.Argument(help="A command and its arguments; `help`.")],
) -> None:
    """Send one fault command to a simulated device (`sim printer --control`, or one of the
    sockets `serve --sim-dir` makes for sim:// devices) and print its answer."""
    import shlex as quoting

    from firmware_sim.control import send_command

    try:
        answer = send_command(socket_path, quoting.join(command))
    except OSError as exc:
        typer.echo(f"cannot reach {socket_path}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(answer)
    if not answer.startswith("ok"):
        raise typer.Exit(1)


@sim_app.command("camera")
def sim_camera(
    out: Annotated[
        Path | None, typer.Option(help="Video file to write (MJPG .avi); or --port.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Be a network camera: MJPEG over HTTP here (0 = any free port)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (with --port).")] = "127.0.0.1",
    control: Annotated[
        Path | None,
        typer.Option(help="With --port: take commands on a unix socket here (see `sim control`)."),
    ] = None,
    qr: Annotated[str | None, typer.Option(help="QR payload held up to the camera.")] = None,
    barcode: Annotated[str | None, typer.Option(help="EAN-13 digits instead of a QR.")] = None,
    width: int = 1280,
    height: int = 720,
    fps: float = 15.0,
    duration: Annotated[float, typer.Option(help="Seconds of video.")] = 4.0,
    show_from: Annotated[float, typer.Option(help="When the phone comes up (s).")] = 0.5,
    show_until: Annotated[float, typer.Option(help="When it is taken away (s).")] = 3.0,
    size: Annotated[float, typer.Option(help="Code size as a fraction of frame height.")] = 0.3,
    angle: Annotated[float, typer.Option(help="In-plane rotation (degrees).")] = 0.0,
    perspective: Annotated[float, typer.Option(help="Turned away, 0…0.5.")] = 0.0,
    blur: Annotated[float, typer.Option(help="Defocus (Gaussian sigma, px).")] = 0.0,
    noise: Annotated[float, typer.Option(help="Sensor noise (grey levels).")] = 0.0,
    contrast: Annotated[float, typer.Option(help="1.0 black on white … 0.2 dim screen.")] = 1.0,
    seed: int = 0,
) -> None:
    """Write a counter scene where a customer holds up a QR (or a barcode) to a video file, or
    with --port be a live network camera (MJPEG over HTTP) until Ctrl-C.

    Live, with --control, the scene and the faults are acted out from outside: `pos-loyalty sim
    control PATH show PAYLOAD` (or hide, garble [FRAMES], clear, unplug, replug, status).
    """
    from firmware_sim.camera import Scenario, write_video

    if port is None and out is None:
        raise typer.BadParameter("give --out FILE, or --port to stream live", param_hint="--out")
    if port is None and qr is None and barcode is None:
        raise typer.BadParameter("give --qr PAYLOAD or --barcode DIGITS", param_hint="--qr")
    if port is not None:  # live: whoever is at the counter stays there (`show`/`hide` change it)
        duration, show_from, show_until = 3600.0, 0.0, 3600.0
    try:
        scenario = Scenario(
            payload=qr if qr is not None else barcode,
            symbology="qr" if barcode is None else "ean13",
            width=width,
            height=height,
            fps=fps,
            code_size=size,
            angle_deg=angle,
            perspective=perspective,
            blur=blur,
            noise=noise,
            contrast=contrast,
            duration_s=duration,
            show_from_s=show_from,
            show_until_s=show_until,
        )
        if port is not None:
            _live_camera(scenario, seed, host, port, control)
            return
        assert out is not None
        frames = write_video(out, scenario, seed=seed)
    except ValueError as exc:  # a setting out of range, or a payload the code cannot hold
        raise typer.BadParameter(str(exc)) from exc
    except OSError as exc:
        typer.echo(f"cannot write {out}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {frames} frames ({width}x{height} at {fps:g} fps) to {out}")


def _live_camera(scenario: Any, seed: int, host: str, port: int, control: Path | None) -> None:
    """Serve the scene as a network camera until Ctrl-C, faults on the control socket."""
    import logging

    from firmware_sim.camera import CameraStreamServer, VirtualCameraDevice
    from firmware_sim.control import ControlServer, camera_commands

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    device = VirtualCameraDevice(scenario, seed)
    try:
        server = CameraStreamServer(device, host, port).start()
    except OSError as exc:
        typer.echo(f"cannot listen on {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from exc
    controls = (
        ControlServer(control, camera_commands(device)).start() if control is not None else None
    )
    _serve_until_ctrl_c(
        f"camera {scenario.width}x{scenario.height} at {scenario.fps:g} fps on {server.url}"
        + (f"; fault control at {control}" if controls else "")
        + ". Ctrl-C stops.",
        server.stop,
        controls.stop if controls is not None else None,
    )


def _serve_until_ctrl_c(banner: str, *stoppers: Callable[[], None] | None) -> None:
    """Say `banner` (where the device listens), block until Ctrl-C, then stop each device server
    (None: one that was not started). A Ctrl-C from the moment the banner is out is a stop."""
    import threading

    never = threading.Event()
    try:
        typer.echo(banner)
        # Wake each second: Ctrl-C may be delivered to one of the device threads, and the main
        # thread runs Python's handler only when it wakes (a wait without a timeout never did;
        # the tgkill test in test_printer_sim_wire.py shows it).
        while not never.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for stop in stoppers:
            if stop is not None:
                stop()
