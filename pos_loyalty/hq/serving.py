"""What `serve` runs for the program: with `[hq]`, the bundle sync loop (SIGHUP pulls now);
without it, SIGHUP re-reads config.toml. Either way the swap is one step, without a restart."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

from pos_loyalty.hq.reload import pid_file, reload_local_program
from pos_loyalty.hq.sync import BundleSync
from pos_loyalty.settings import ConfigError
from pos_loyalty.store import Store

log = logging.getLogger("pos_loyalty.hq")


def _reload_in_background(store: Store) -> None:
    def work() -> None:
        with contextlib.suppress(ConfigError):  # logged; the running program keeps selling
            reload_local_program(store=store)

    threading.Thread(target=work, name="rules-reload", daemon=True).start()


@contextlib.contextmanager
def program_updates(store: Store) -> Iterator[None]:
    """Keep the running program current while `serve` runs; writes the pid file `rules reload`
    signals."""
    pid_path = None if store.settings.source.startswith("<") else pid_file(store.settings.source)
    sync = BundleSync(store) if store.settings.hq is not None else None
    with contextlib.ExitStack() as stack:
        if sync is not None:
            stack.enter_context(sync)
            signal.signal(signal.SIGHUP, lambda *_: sync.pull_now())
        else:
            signal.signal(signal.SIGHUP, lambda *_: _reload_in_background(store))
        if pid_path is not None:
            with contextlib.suppress(OSError):
                pid_path.write_text(f"{os.getpid()}\n", encoding="ascii")
        try:
            yield
        finally:
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            if pid_path is not None:
                with contextlib.suppress(OSError):
                    pid_path.unlink()
