"""Start-up as an operator meets it: what the CLI says when the database or the secret is not
there, and the environment overrides a deployment uses. Real processes, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.filesystems import fill, tiny_filesystem
from tests.serving import SAFETY_S

EXE = str(Path(sys.executable).with_name("pos-loyalty"))


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    return subprocess.run(
        [EXE, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=SAFETY_S,
    )


def write_config(tmp_path: Path, database_url: str, secret_file: str = "./secret.key") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[store]\nid = "t-001"\nname = "Тест"\ndatabase_url = "{database_url}"\n'
        f'secret_file = "{secret_file}"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("command", [("serve",), ("db", "upgrade"), ("keys", "create")])
def test_unreachable_database_is_one_line_and_exit_2(tmp_path: Path, command: tuple[str]) -> None:
    # Nothing listens on port 9 (discard); the password must not be printed.
    config = write_config(tmp_path, "postgresql+psycopg://loyalty:hunter2@127.0.0.1:9/loyalty")
    args = [*command, "--config", str(config)]
    if command == ("keys", "create"):
        args += ["--scope", "till"]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Database error: cannot open postgresql+psycopg://loyalty:***@127.0.0.1:9/loyalty" in (
        result.stderr
    )
    assert f"check store.database_url in {config}" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout
    assert "plk_" not in result.stdout  # no key was made


def test_sqlite_folder_that_cannot_exist_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    config = write_config(tmp_path, f"sqlite:///{blocker}/store.db")
    result = run("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert f"Database error: cannot create sqlite:///{blocker}/store.db" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_full_disk_under_the_sqlite_file_is_named_as_the_reason(tmp_path: Path) -> None:
    """No reserve to give up (`reserve_mb = 0`): the operator is told the disk is full, not to
    check a database URL that is right."""
    with tiny_filesystem(tmp_path / "disk", "1m") as disk:
        config = write_config(tmp_path, f"sqlite:///{disk}/store.db")
        with config.open("a", encoding="utf-8") as out:
            out.write("[storage]\nreserve_mb = 0\nmin_free_mb = 0\n")
        assert run("db", "upgrade", "--config", str(config), cwd=tmp_path).returncode == 0
        fill(disk)
        result = run("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"Database error: cannot open sqlite:///{disk}/store.db" in result.stderr
    assert "the disk holding it is full (0 KiB free): free some space there" in result.stderr
    assert "check store.database_url" not in result.stderr and "Traceback" not in result.stderr


def test_secret_created_in_a_new_private_folder(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite:///./store.db", secret_file="./keys/secret.key")
    result = run("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    secret = tmp_path / "keys" / "secret.key"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    assert len(secret.read_bytes()) == 32
    # Restarting keeps the same secret (a new one would void every QR and phone lookup).
    before = secret.read_bytes()
    assert run("db", "upgrade", "--config", str(config), cwd=tmp_path).returncode == 0
    assert secret.read_bytes() == before


def test_secret_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    config = write_config(tmp_path, "sqlite:///./store.db", secret_file=f"{blocker}/secret.key")
    result = run("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert f"Store secret error: {blocker}/secret.key: cannot create the store secret" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_truncated_secret_is_refused_not_replaced(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite:///./store.db")
    (tmp_path / "secret.key").write_bytes(b"short")
    result = run("serve", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "the store secret must be 32 bytes, found 5" in result.stderr
    assert (tmp_path / "secret.key").read_bytes() == b"short"


def test_environment_names_the_config_and_the_database(tmp_path: Path) -> None:
    """`POS_LOYALTY_CONFIG` instead of --config; `POS_LOYALTY_DATABASE_URL` over the file's URL."""
    config = write_config(tmp_path, "sqlite:///./from-file.db")
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    result = run(
        "db",
        "upgrade",
        cwd=elsewhere,
        POS_LOYALTY_CONFIG=str(config),
        POS_LOYALTY_DATABASE_URL=f"sqlite:///{tmp_path / 'from-env.db'}",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "from-file.db").exists()
    assert (tmp_path / "secret.key").exists()  # relative to the config file, not the cwd
