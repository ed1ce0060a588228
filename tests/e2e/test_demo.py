"""`make demo` as a newcomer runs it: the repository's config.toml, a real process, its outputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from tests.serving import SAFETY_S

REPO = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("pos-loyalty"))
pytestmark = pytest.mark.xdist_group("demo")  # one demo run serves both tests (--dist loadgroup)


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    env["COLUMNS"] = "200"  # rich wraps narrower terminals; the assertions read whole phrases
    done = subprocess.run(
        [EXE, "demo", "--config", str(REPO / "config.toml"), "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3 * SAFETY_S,  # a safety only: the demo waits on each step's own signal
    )
    return done, out


def test_demo_tells_the_store_day(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, _ = demo_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout
    assert "409 phone_taken" in said
    assert "422 qr_forged" in said and "422 card_bad_checksum" in said
    assert "customer_identified Мария С." in said  # the swipe on the virtual scanner
    # The upsell hint (how much is missing depends on whether the morning bakery discount is on).
    assert re.search(r"Добавьте \d+,\d\d\xa0₽ — получите купон на 70,00\xa0₽", said)
    assert "the first sale again" in said  # the till's retry with the same key
    assert "С днём рождения! 200 ₽ в подарок" in said  # Ольга's personal coupon
    assert "waiting: paper_out" in said and "print_result: printed" in said
    assert "купон уже использован" in said  # the second till is refused the spent coupon
    assert "status redeemed" in said
    # tobacco is out of the program: the coupon and the points went over the other lines only
    assert "Сигареты «Ява»: discount 0,00\xa0₽, points 0,00\xa0₽" in said
    assert "Табачная продукция: скидки, купоны и баллы не применяются" in said
    assert "yesterday's basket returned" in said and "for the spent coupon" in said
    assert "8 of 8 sales committed" in said  # the rush hour, 8 tills at once
    assert "every balance equals its ledger" in said
    # Head office: published, forecast, pulled and switched between two baskets, reported.
    assert "head office published v1 for all stores" in said
    assert re.search(r"sweets-20 would touch [1-9]\d* baskets", said)
    assert re.search(r"cost 240,00\xa0₽ under \w+, 192,00\xa0₽ under v1-", said)
    assert "store msk-001 runs v1, behind: no" in said
    assert "Demo finished." in said
    assert re.search(r"back office +http://127\.0\.0\.1:\d+/store", said)  # the pages it serves
    assert re.search(r"display lane-1 +http://127\.0\.0\.1:\d+/lanes/lane-1/display", said)


def test_demo_prints_receipts_whose_coupons_scan(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, out = demo_run
    assert done.returncode == 0
    receipts = sorted((out / "devices" / "lane-1-receipts").glob("*.png"))
    # Мария's sale, Ольга's (printed after the new roll), Мария's next visit, the refund slips
    # (one chocolate; yesterday's basket, whose spent points and coupon the policy kept).
    assert [p.name for p in receipts] == [f"000{n}.png" for n in range(1, 6)]
    slip = (receipts[4].with_suffix(".txt")).read_text(encoding="utf-8")
    assert "Удержано за баллы/купоны" in slip and "-" not in slip.split("Баланс")[1].split()[0]
    first = zxingcpp.read_barcodes(Image.open(receipts[0]).convert("L"))
    payloads = sorted(code.text for code in first)
    assert len(payloads) == 2 and all(p.startswith("PLC1.") for p in payloads)
    text = (receipts[0].with_suffix(".txt")).read_text(encoding="utf-8")
    assert "ВАШ КУПОН" in text and "Действует до" in text
    assert (out / "segments.csv").read_text(encoding="utf-8").startswith("customer_id,segment")
    assert (out / "segments.png").stat().st_size > 1000
    assert (out / "results.csv").read_text(encoding="utf-8").startswith("rule_id,baskets")
    assert (out / "results.png").stat().st_size > 1000
    # The evening's reactivation campaign: the lapsed regulars who consented get a coupon.
    campaign = (out / "reactivation.csv").read_text(encoding="utf-8").splitlines()
    assert campaign[0].startswith("customer_id,name,phone,phone_in_clear,channels")
    assert sorted(row.split(",")[1] for row in campaign[1:]) == ["Нина Б.", "Сергей В."]
