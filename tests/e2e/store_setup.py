"""A store made ready for `serve` as its installer would: the schema by `pos-loyalty db upgrade`,
customers enrolled at the counter, a till key, and the clip a lane's camera replays of a customer
holding up their loyalty QR."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from firmware_sim.camera import Scenario, write_video
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.customers.models import Customer
from pos_loyalty.customers.service import enrol_customer, loyalty_qr
from pos_loyalty.settings import load_settings
from pos_loyalty.store import Store
from tests.conftest import new_key

EXE = str(Path(sys.executable).with_name("pos-loyalty"))
IVAN = ("+7 916 123-45-67", "Иван Петров")
MARIA = ("+7 916 765-43-21", "Мария Иванова")


@dataclass(frozen=True)
class PreparedStore:
    token: str  # a till key
    customers: list[Customer]  # in the order they were enrolled
    qr: str  # the first customer's loyalty QR


def prepare_store(config: Path, *people: tuple[str, str], cwd: Path | None = None) -> PreparedStore:
    """`db upgrade` by the CLI (with no POS_LOYALTY_ variable of the test run leaking in), then
    `people` (phone, name) enrolled — Иван alone unless told — and a till key made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    subprocess.run(
        [EXE, "db", "upgrade", "--config", str(config)],
        cwd=cwd or config.parent,
        env=env,
        check=True,
    )
    store = Store.open(load_settings(config, environ={}))
    try:
        customers = []
        for phone, name in people or (IVAN,):
            with store.uow(write=True) as uow:
                customers.append(
                    enrol_customer(
                        uow=uow,
                        settings=store.settings,
                        secret=store.secret,
                        phone=phone,
                        name=name,
                    )
                )
        token = new_key(store, Scope.TILL)
        qr = loyalty_qr(secret=store.secret, customer_id=customers[0].id, now=store.now())
    finally:
        store.close()
    return PreparedStore(token, customers, qr)


def write_qr_clip(path: Path, qr: str) -> None:
    """A 2.5 s clip (the camera replays it forever) with the QR held up from 0.5 s to 1.5 s."""
    clip = Scenario(
        payload=qr, width=640, height=480, fps=15, duration_s=2.5, show_from_s=0.5, show_until_s=1.5
    )
    write_video(path, clip, seed=3)
