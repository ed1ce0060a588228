"""The operator's customer-care commands as a real process on a real SQLite file: edit,
adjust, export, merge, erase, and the audit log naming the shell user."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import run, write_config


def enrol(config: Path, tmp_path: Path, phone: str, name: str, *extra: str) -> str:
    done = run(
        "customers",
        "enrol",
        "--phone",
        phone,
        "--name",
        name,
        *extra,
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if "id=" in ln)
    return line.split("id=")[1].strip()


def test_customer_care_from_the_shell(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ivan = enrol(config, tmp_path, "9161234567", "Иван Петров", "--email", "ivan@Example.ru")
    twin = enrol(config, tmp_path, "9037654321", "Иван Петров")
    cfg = ("--config", str(config))

    edited = run(
        "customers",
        "edit",
        ivan,
        "--name",
        "Иван Петров-Водкин",
        "--consent",
        "sms=no",
        "--email",
        "ivan.p@example.ru",
        *cfg,
        cwd=tmp_path,
    )
    assert edited.returncode == 0, edited.stderr
    assert "Иван Петров-Водкин; consents: sms=no" in edited.stdout
    bad_email = run("customers", "edit", ivan, "--email", "ivan@", *cfg, cwd=tmp_path)
    assert bad_email.returncode == 1 and "email_invalid" in bad_email.stderr

    credited = run(
        "points", "adjust", twin, "--points", "250", "--reason", "компенсация", *cfg, cwd=tmp_path
    )
    assert credited.returncode == 0, credited.stderr
    assert "+250 points; balance 250" in credited.stdout
    refused = run(
        "points", "adjust", twin, "--points", "-999", "--reason", "ошибка", *cfg, cwd=tmp_path
    )
    assert refused.returncode == 1 and "insufficient_points" in refused.stderr

    merged = run("customers", "merge", twin, "--into", ivan, *cfg, cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert "balance 250" in merged.stdout

    out = tmp_path / "ivan.json"
    exported = run("customers", "export", ivan, "--out", str(out), *cfg, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["profile"]["name"] == "Иван Петров-Водкин"
    assert data["profile"]["email"] == "ivan.p@example.ru"
    assert [e["points"] for e in data["ledger"]] == [250]
    assert len(data["cards"]) == 2
    assert data["merged_accounts"][0]["customer_id"] == twin

    unconfirmed = run("customers", "erase", ivan, *cfg, cwd=tmp_path)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    erased = run("customers", "erase", ivan, "--yes", *cfg, cwd=tmp_path)
    assert erased.returncode == 0, erased.stderr
    assert "2 card(s) removed" in erased.stdout

    audit = run("audit", "list", "--customer", ivan, *cfg, cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr
    for action in ("customer_erased", "data_exported", "customers_merged", "profile_edited"):
        assert action in audit.stdout
    assert "shell:" in audit.stdout


def test_enrol_prints_the_referral_code_and_takes_a_friends(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cfg = ("--config", str(config))
    ivan = run("customers", "enrol", "--phone", "9161234567", "--name", "Иван", *cfg, cwd=tmp_path)
    assert ivan.returncode == 0, ivan.stderr
    code = next(ln for ln in ivan.stdout.splitlines() if ln.startswith("referral code "))
    code = code.removeprefix("referral code ")
    assert len(code) == 8

    maria = run(
        "customers",
        "enrol",
        "--phone",
        "9037654321",
        "--name",
        "Мария [b]Смирнова[/b]",  # a name is printed as typed, never read as markup
        "--referred-by",
        code.lower(),
        *cfg,
        cwd=tmp_path,
    )
    assert maria.returncode == 0, maria.stderr
    shown = next(ln for ln in maria.stdout.splitlines() if ln.startswith("enrolled "))
    assert shown.startswith("enrolled Мария [b]Смирнова[/b] id=")
    maria_id = shown.split("id=")[1].strip()
    out = tmp_path / "maria.json"
    exported = run("customers", "export", maria_id, "--out", str(out), *cfg, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    referred_by = json.loads(out.read_text(encoding="utf-8"))["referrals"]["referred_by"]
    assert referred_by["code"] == code

    unknown = ("customers", "enrol", "--phone", "9051112233", "--name", "Пётр", *cfg)
    refused = run(*unknown, "--referred-by", "NOBODY42", cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.strip() == (
        "referral_code_unknown: referral code 'NOBODY42' belongs to nobody"
    )
    assert "enrolled" not in refused.stdout
    # Nothing was written: the same phone enrols afresh.
    assert run(*unknown, cwd=tmp_path).returncode == 0


def test_coupons_generate_writes_a_csv_of_bearer_codes(tmp_path: Path) -> None:
    rules = (
        '\n[[rules]]\nid = "spend-700-get-70"\nkind = "threshold"\nlabel = "700 → 70"\n'
        "min_subtotal = 70000\nreward = { coupon = { amount_off = 7000, valid_days = 14 } }\n"
    )
    config = write_config(tmp_path, rules)
    out = tmp_path / "flyer.csv"
    done = run(
        "coupons",
        "generate",
        "--rule",
        "spend-700-get-70",
        "--count",
        "5",
        "--csv",
        str(out),
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "generated 5 coupon(s) of rule spend-700-get-70" in done.stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("code,qr,label,amount_off") and len(lines) == 6
    assert len({line.split(",")[0] for line in lines[1:]}) == 5
    wrong = run(
        "coupons",
        "generate",
        "--rule",
        "nope",
        "--count",
        "1",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert wrong.returncode == 1 and "rule_not_a_coupon" in wrong.stderr
