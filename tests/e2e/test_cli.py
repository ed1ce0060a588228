"""The command line as an operator uses it: real processes, a real config file, a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.serving import SAFETY_S, free_port, wait_serving

EXE = str(Path(sys.executable).with_name("pos-loyalty"))


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[store]\nid = "t-001"\nname = "Тест"\n'
        'database_url = "sqlite:///./store.db"\nsecret_file = "./secret.key"\n' + extra,
        encoding="utf-8",
    )
    return path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    return subprocess.run(
        [EXE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=SAFETY_S
    )


def test_db_upgrade_keys_and_enrol(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    upgraded = run("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "revision" in upgraded.stdout
    secret = tmp_path / "secret.key"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_bytes() not in upgraded.stdout.encode() + upgraded.stderr.encode()

    created = run("keys", "create", "--scope", "till", "--config", str(config), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("plk_till_") and len(key) > 30
    assert created.stdout.count(key) == 1

    enrolled = run(
        "customers",
        "enrol",
        "--phone",
        "8 916 123 45 67",
        "--name",
        "Иван Петров",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Иван Петров" in enrolled.stdout and "PLQ1." in enrolled.stdout
    again = run(
        "customers",
        "enrol",
        "--phone",
        "+79161234567",
        "--name",
        "X",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert again.returncode == 1 and "phone_taken" in again.stderr


def test_keys_are_listed_without_their_tokens_and_revoked(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    tokens = []
    for label in ("lane-1 till", "lane-2 till"):
        made = run(
            "keys",
            "create",
            "--scope",
            "till",
            "--label",
            label,
            "--config",
            str(config),
            cwd=tmp_path,
        )
        assert made.returncode == 0, made.stderr
        tokens.append(made.stdout.strip().splitlines()[-1])
    listed = run("keys", "list", "--config", str(config), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "lane-1 till" in listed.stdout and "lane-2 till" in listed.stdout
    assert not any(token in listed.stdout for token in tokens)

    revoked = run("keys", "revoke", "1", "--config", str(config), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert "key 1 (till, lane-1 till) revoked" in revoked.stdout
    unknown = run("keys", "revoke", "99", "--config", str(config), cwd=tmp_path)
    assert unknown.returncode == 1 and "key_not_found" in unknown.stderr

    from pos_loyalty.apikeys.service import scope_of
    from pos_loyalty.settings import load_settings
    from pos_loyalty.store import Store

    store = Store.open(load_settings(config, environ={}))
    try:
        with store.uow() as uow:
            assert scope_of(uow=uow, token=tokens[0]) is None  # the API answers it 401
            assert scope_of(uow=uow, token=tokens[1]) == "till"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[api]\nport = 0\n", "api.port"),
        ("[identity]\nqr_max_age = 5\n", "identity.qr_max_age: unknown key"),
        ('[[rules]]\nid = "Bad Id"\nkind = "discount"\npercent = 10\n', "rules[0]"),
    ],
)
def test_bad_config_stops_start_up_naming_the_key(
    tmp_path: Path, extra: str, expected: str
) -> None:
    config = write_config(tmp_path, extra)
    result = run("serve", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert str(config) in result.stderr and expected in result.stderr
    assert not (tmp_path / "store.db").exists()


def test_serve_migrates_and_answers(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    key = run("keys", "create", "--scope", "till", "--config", str(config), cwd=tmp_path)
    token = key.stdout.strip().splitlines()[-1]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    proc = subprocess.Popen(
        [EXE, "serve", "--config", str(config), "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_serving(f"http://127.0.0.1:{port}", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=SAFETY_S) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/customers",
            data=json.dumps({"phone": "9161234567", "name": "Иван"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=SAFETY_S) as reply:
            assert reply.status == 201
    finally:
        proc.terminate()
        output = proc.communicate(timeout=SAFETY_S)[0].decode()
    assert token not in output
