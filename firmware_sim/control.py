"""A fault control channel for a simulated device: one command per line on a local unix socket.

A test, a script or a person (`pos-loyalty sim control PATH COMMAND`, or `socat - UNIX:PATH`)
acts out what happens to the hardware: the paper runs out, the cover opens, the cable is pulled.
Each line is a command and its arguments (shell quoting); each gets one answer line, `ok …` or
`error …`. `help` lists a device's commands.

    printer:  status | paper-out | paper-near-end | refill [MM] | paper MM | cover-open |
              cover-close | cutter-error | error KIND | fix | offline | online | feed-press |
              feed-release | power-off | power-on | unplug | plug |
              during-next cover_open|autocutter|paper_out|offline|power_off|unplug [LINES]
    scanner:  status | scan TEXT | swipe PAN [NAME] [YYMM] [1|2|both] | garble TEXT |
              truncate TEXT | split TEXT [GAP_S] | repeat TEXT [TIMES] | unplug | replug
    camera:   status | show PAYLOAD [qr|ean13] | hide | garble [FRAMES] | clear | unplug | replug

Scan text may carry `\\xNN` escapes (`\\x1d` is the GS1 group separator).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

log = logging.getLogger(__name__)

Handler = Callable[[list[str]], str]
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


class ControlError(ValueError):
    """A command the device cannot act on (unknown, or bad arguments): answered `error …`."""


def run_command(commands: dict[str, Handler], line: str) -> str:
    """One command line against a device's table: the answer line (without the newline)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return f"error {exc}"
    if not words:
        return "error empty command"
    verb, args = words[0].lower(), words[1:]
    if verb == "help":
        return "ok " + " ".join(sorted(commands))
    handler = commands.get(verb)
    if handler is None:
        return f"error unknown command {verb!r}; try help"
    try:
        answer = handler(args)
    except (ControlError, ValueError, IndexError, ConnectionError) as exc:
        return f"error {verb}: {exc}"
    return f"ok {answer}".rstrip()


class ControlServer:
    """Serves a device's command table on a unix socket at `path` (replaced if it exists)."""

    def __init__(self, path: str | os.PathLike[str], commands: dict[str, Handler]) -> None:
        self.path = Path(path)
        self.commands = commands
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> Self:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(4)
        listener.settimeout(0.2)
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"control-{self.path.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rwb") as stream:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                answer = run_command(self.commands, line)
                log.info("control %s: %s -> %s", self.path.name, line, answer)
                stream.write(answer.encode("utf-8") + b"\n")
                stream.flush()


def send_command(path: str | os.PathLike[str], line: str, timeout: float = 30.0) -> str:
    """Send one command to a control socket and return its answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(str(path))
        connection.sendall(line.strip().encode("utf-8") + b"\n")
        answer = bytearray()
        while not answer.endswith(b"\n"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode("utf-8").strip()


def unescape(text: str) -> str:
    """`\\xNN` escapes in a typed scan, e.g. GS1's group separator `\\x1d`."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


def _number(args: list[str], index: int, default: float) -> float:
    if len(args) <= index:
        return default
    try:
        return float(args[index])
    except ValueError:
        raise ControlError(f"{args[index]!r} is not a number") from None


def _text(args: list[str]) -> str:
    if not args:
        raise ControlError("what to scan?")
    return unescape(args[0])


def _then(status: Handler, effect: Callable[[], object]) -> Handler:
    """A command that acts on the device and answers with its status line."""

    def handler(_: list[str]) -> str:
        effect()
        return status([])

    return handler


def printer_commands(printer: Any) -> dict[str, Handler]:
    """Faults of a `firmware_sim.printer.VirtualPrinter`."""

    def status(_: list[str]) -> str:
        codes = " ".join(f"{printer.status(n):02x}" for n in (1, 2, 3, 4))
        remaining = printer.paper_remaining_mm
        return (
            f"dle_eot={codes} powered={printer.powered} receipts={printer.receipt_count} "
            f"buffered={printer.buffered_commands} lost_cuts={printer.lost_cuts} "
            f"paper_mm={'endless' if remaining is None else round(remaining)}"
        )

    def near_end(_: list[str]) -> str:
        printer.set_paper_remaining(max(printer.near_end_mm / 2, 1.0))
        return status([])

    def refill(args: list[str]) -> str:
        printer.refill(_number(args, 0, printer.roll_mm) if args else None)
        return status([])

    def paper(args: list[str]) -> str:
        if not args:
            raise ControlError("paper MM")
        printer.set_paper_remaining(_number(args, 0, 0))
        return status([])

    def error(args: list[str]) -> str:
        printer.set_error(args[0] if args else "recoverable")
        return status([])

    def during_next(args: list[str]) -> str:
        if not args:
            raise ControlError("during-next KIND [LINES]")
        printer.arm_fault(args[0], after_lines=int(_number(args, 1, 3)))
        return f"armed {args[0]}"

    return {
        "status": status,
        "paper-out": _then(status, lambda: printer.set_paper_remaining(0)),
        "paper-near-end": near_end,
        "refill": refill,
        "paper": paper,
        "cover-open": _then(status, lambda: printer.set_cover_open(True)),
        "cover-close": _then(status, lambda: printer.set_cover_open(False)),
        "cutter-error": _then(status, lambda: printer.arm_fault("autocutter")),
        "error": error,
        "fix": _then(status, printer.remove_error_cause),
        "offline": _then(status, lambda: printer.set_offline(True)),
        "online": _then(status, lambda: printer.set_offline(False)),
        "feed-press": _then(status, lambda: printer.press_feed(True)),
        "feed-release": _then(status, lambda: printer.press_feed(False)),
        "power-off": _then(status, lambda: printer.set_power(False)),
        "power-on": _then(status, lambda: printer.set_power(True)),
        "unplug": _then(status, lambda: printer.set_unplugged(True)),
        "plug": _then(status, lambda: printer.set_unplugged(False)),
        "during-next": during_next,
    }


def scanner_commands(scanner: Any, symbology: str = "code128") -> dict[str, Handler]:
    """Scans and faults of a `firmware_sim.scanner.VirtualScanner`."""

    def status(_: list[str]) -> str:
        return f"plugged={scanner.plugged} port={scanner.port} bytes_sent={scanner.bytes_sent}"

    def scan(args: list[str]) -> str:
        return f"sent {len(scanner.scan(_text(args), symbology))} bytes"

    def swipe(args: list[str]) -> str:
        if not args:
            raise ControlError("swipe PAN [NAME] [YYMM] [1|2|both]")
        pan, *more = args
        tracks = more[2] if len(more) > 2 else "both"
        if tracks not in ("1", "2", "both"):
            raise ControlError("tracks: 1, 2 or both")
        name = more[0] if more else "IVANOV/IVAN"
        wire = scanner.swipe(pan, name, more[1] if len(more) > 1 else "2912", tracks=tracks)
        return f"sent {len(wire)} bytes"

    def garble(args: list[str]) -> str:
        return f"sent {len(scanner.scan_garbled(_text(args), symbology))} bytes"

    def truncate(args: list[str]) -> str:
        return f"sent {len(scanner.scan_truncated(_text(args), symbology))} bytes"

    def split(args: list[str]) -> str:
        wire = scanner.scan_split(_text(args), symbology, gap_s=_number(args, 1, 0.5))
        return f"sent {len(wire)} bytes in two reads"

    def repeat(args: list[str]) -> str:
        times = int(_number(args, 1, 5))
        wire = scanner.scan_repeated(_text(args), times, symbology)
        return f"sent {len(wire)} bytes {times} times"

    return {
        "status": status,
        "scan": scan,
        "swipe": swipe,
        "garble": garble,
        "truncate": truncate,
        "split": split,
        "repeat": repeat,
        "unplug": _then(status, scanner.unplug),
        "replug": _then(status, scanner.replug),
    }


def camera_commands(device: Any) -> dict[str, Handler]:
    """Scenes and faults of a `firmware_sim.camera.VirtualCameraDevice` (in `serve`, or on its
    own as a network camera: `sim camera --port`)."""
    from dataclasses import replace

    def status(_: list[str]) -> str:
        payload = device.scenario.payload
        return (
            f"plugged={device.plugged} showing={'nothing' if payload is None else 'code'} "
            f"garble={device.garbling.replace(' ', '_')} garbled_frames={device.garbled_frames}"
        )

    def show(args: list[str]) -> str:
        if not args:
            raise ControlError("show PAYLOAD [qr|ean13]")
        symbology = args[1] if len(args) > 1 else "qr"
        device.show(
            replace(
                device.scenario,
                payload=args[0],
                symbology=symbology,
                duration_s=3600.0,
                show_from_s=0.0,
                show_until_s=3600.0,
                loop=False,
            )
        )
        return f"showing a {symbology}"

    def hide(_: list[str]) -> str:
        device.show(replace(device.scenario, payload=None))
        return "empty counter"

    def garble(args: list[str]) -> str:
        frames = int(_number(args, 0, 0)) if args else None
        if frames is not None and frames < 1:
            raise ControlError("garble [FRAMES]: a positive number of frames, or none for all")
        device.garble(frames)
        return status([])

    return {
        "status": status,
        "show": show,
        "hide": hide,
        "garble": garble,
        "clear": _then(status, device.clear_garble),
        "unplug": _then(status, device.unplug),
        "replug": _then(status, device.replug),
    }
