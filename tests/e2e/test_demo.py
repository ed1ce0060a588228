"""`make demo` as a newcomer runs it: the repository's config.toml, a real process, its outputs.

Three runs: the store owner's (Russian, the store's language), an integrator's (`--lang en
--verbose`: English with HTTP codes and event names), and one whose lane-1 printer is powered off
through the simulator's control socket for the whole day, which must exit 1 naming the step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from firmware_sim.control import send_command
from tests.serving import SAFETY_S, wait_until

REPO = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("pos-loyalty"))
pytestmark = pytest.mark.xdist_group("demo")  # one demo run serves several tests (--dist loadgroup)
Run = tuple[subprocess.CompletedProcess[str], Path]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    env["COLUMNS"] = "200"  # rich wraps narrower terminals; the assertions read whole phrases
    return env


def _demo(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "demo", "--config", str(REPO / "config.toml"), "--out", str(out), *options],
        cwd=REPO,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=3 * SAFETY_S,  # a safety only: the demo waits on each step's own signal
    )


@pytest.fixture(scope="module")
def owner_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("demo") / "out"
    return _demo(out), out


@pytest.fixture(scope="module")
def integrator_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("demo-en") / "out"
    return _demo(out, "--lang", "en", "--verbose"), out


def test_demo_tells_the_owner_the_day_in_russian(owner_run: Run) -> None:
    done, _ = owner_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout
    assert "этот телефон уже зарегистрирован" in said
    assert "поддельный QR-код: подпись не сходится" in said
    assert "в номере карты ошибка (контрольная цифра)" in said
    assert re.search(r"Добавьте \d+,\d\d\xa0₽ — получите купон на 70,00\xa0₽", said)
    assert "та же продажа, второй раз не списано" in said
    assert "С днём рождения! 200 ₽ в подарок" in said
    assert "нет бумаги — чек ждёт в очереди" in said and "чек напечатан" in said
    assert "купон уже использован" in said
    assert "Сигареты «Ява»: скидка 0,00\xa0₽, баллами 0,00\xa0₽" in said
    assert "Йогурты: 2 по цене 1 −54,90\xa0₽" in said  # no card needed
    assert "Промокод ЛЕТО25: −15%" in said and "промокод уже использован этим покупателем" in said
    assert "Прошло 8 из 8 продаж" in said
    assert re.search(r"стоили 240,00\xa0₽, теперь 192,00\xa0₽", said)
    assert "Демонстрация закончена." in said
    # The pages it serves, and no technical detail without --verbose.
    assert re.search(r"управление магазином +http://127\.0\.0\.1:\d+/store", said)
    assert re.search(r"экран покупателя lane-1 +http://127\.0\.0\.1:\d+/lanes/lane-1/display", said)
    assert re.search(r"описание API +http://127\.0\.0\.1:\d+/docs", said)
    for technical in ("phone_taken", "customer_identified", "Idempotency-Key", "/v1/"):
        assert technical not in said, technical
    assert not re.search(r"\b(evaluate|commit|refund)\b", said)


def test_demo_in_english_with_the_technical_detail(integrator_run: Run) -> None:
    done, _ = integrator_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout
    assert "409 phone_taken" in said
    assert "422 qr_forged" in said and "422 card_bad_checksum" in said
    assert "customer_identified Мария С." in said  # the swipe on the virtual scanner
    assert "the first sale again" in said and "same Idempotency-Key" in said
    assert "print_result: waiting paper_out" in said and "print_result: printed" in said
    assert "Сигареты «Ява»: discount 0,00\xa0₽, points 0,00\xa0₽" in said
    assert "422 promo_code_exhausted" in said  # ЛЕТО25 is once per customer
    assert "yesterday's basket returned" in said and "for the spent coupon" in said
    assert "8 of 8 sales committed" in said and "every balance equals its ledger" in said
    assert "head office published v1 for all stores" in said
    assert re.search(r"sweets-20 would touch [1-9]\d* baskets", said)
    assert re.search(r"cost 240,00\xa0₽ under \w+, 192,00\xa0₽ under v1-", said)
    assert "store msk-001 runs v1, behind: no" in said
    assert "Demo finished." in said
    assert re.search(r"back office +http://127\.0\.0\.1:\d+/store", said)
    assert re.search(r"API docs +http://127\.0\.0\.1:\d+/docs", said)


def test_demo_prints_receipts_whose_coupons_scan(owner_run: Run) -> None:
    done, out = owner_run
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
    # The evening's reactivation campaign: the lapsed regulars who consented get a coupon, by
    # e-mail (the demo store keeps no plain phones); Павел gave no consent and gets none.
    campaign = (out / "reactivation.csv").read_text(encoding="utf-8").splitlines()
    assert campaign[0].startswith("customer_id,name,phone,phone_in_clear,email,channels")
    assert sorted(tuple(row.split(",")[1:5:3]) for row in campaign[1:]) == [
        ("Нина Б.", "nina.belova@example.ru"),
        ("Сергей В.", "s.volkov@example.ru"),
    ]


def test_demo_exits_1_naming_the_step_when_the_printer_is_off(tmp_path: Path) -> None:
    """The lane-1 printer is switched off at its control socket as soon as the simulator starts
    (before the first sale), so no receipt of the day can print."""
    out = tmp_path / "out"
    log = tmp_path / "demo.log"
    with log.open("w", encoding="utf-8") as stdout:
        demo = subprocess.Popen(
            [EXE, "demo", "--config", str(REPO / "config.toml"), "--out", str(out)],
            cwd=REPO,
            env=_environment(),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            control = out / "devices" / "lane-1-printer.ctl"
            wait_until(
                control.exists,
                "the simulated printer's control socket",
                alive=lambda: demo.poll() is None,
            )
            assert "powered=False" in send_command(control, "power-off")
            returncode = demo.wait(timeout=3 * SAFETY_S)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
    said = log.read_text(encoding="utf-8")
    assert returncode == 1, said[-3000:]
    failures = said.split("Демонстрация не удалась")[1]
    assert re.search(r"^ +- чек не напечатан", failures, re.MULTILINE), failures
    assert "Демонстрация закончена." not in said
