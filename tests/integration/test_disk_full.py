"""A disk that fills up under the SQLite database: on a real tiny file system (tmpfs).

The WAL took the last free bytes once and the service answered 503 for ever, a restart included.
Now a write that fails for want of space makes the service checkpoint and cut the WAL, below the
free-space floor new work is refused before it starts, and service comes back by itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.store import Store
from tests.conftest import make_settings, new_key
from tests.filesystems import fill, tiny_filesystem
from tests.serving import wait_until


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tiny_filesystem(tmp_path / "disk", "3m") as mounted:
        yield mounted


def open_client(
    tmp_path: Path, disk: Path, sqlite_template: Path, min_free_mb: float, fresh: bool = True
) -> TestClient:
    """The service on the tiny disk: a fresh database, or (`fresh=False`) the one there."""
    if fresh:
        shutil.copyfile(sqlite_template, disk / "store.db")
    settings = make_settings(
        tmp_path,
        f"sqlite:///{disk / 'store.db'}",
        {"storage": {"min_free_mb": min_free_mb, "reserve_mb": 0.5}},
    )
    store = Store.open(settings)
    client = TestClient(create_app(settings, store=store), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
    return client


def enrol(client: TestClient, n: int) -> int:
    body = {"phone": f"916{n:07d}", "name": "Покупатель " + "я" * 150}
    return client.post("/v1/customers", json=body).status_code


def test_a_wal_that_filled_the_disk_is_cut_and_writes_come_back(
    tmp_path: Path, disk: Path, sqlite_template: Path
) -> None:
    """No floor: the tills write until the disk is full, as on the store that went down; then
    the service is restarted, as that owner did, and writes come back with nothing deleted."""
    with open_client(tmp_path, disk, sqlite_template, min_free_mb=0) as client:
        n = 0
        while (status := enrol(client, n)) == 201:
            n += 1
            assert n < 20_000, "the 3 MB disk never filled"
        assert status == 503
        assert client.get("/healthz").status_code == 200
        client.app.state.store.close()  # type: ignore[attr-defined]
    with open_client(tmp_path, disk, sqlite_template, min_free_mb=0, fresh=False) as client:

        def writes_again() -> bool:
            nonlocal n
            n += 1
            return enrol(client, n) == 201

        # Nothing is deleted by hand: the space the WAL held comes back by itself.
        wait_until(writes_again, "writes never came back after the disk filled", safety_s=120)
        assert client.get("/v1/customers/" + "0" * 32).status_code == 404  # and it reads
        wal = disk / "store.db-wal"
        assert not wal.exists() or wal.stat().st_size < 1024 * 1024


def test_below_the_floor_new_work_is_refused_early_and_resumes_when_space_returns(
    tmp_path: Path, disk: Path, sqlite_template: Path
) -> None:
    with open_client(tmp_path, disk, sqlite_template, min_free_mb=1) as client:
        assert enrol(client, 1) == 201
        ballast = fill(disk, leave_bytes=512 * 1024)
        refused = client.post("/v1/customers", json={"phone": "9160000002", "name": "Пётр"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "30"
        error = refused.json()["error"]
        assert error["code"] == "disk_low"
        assert "KiB free, below the floor of 1024 KiB" in error["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["message"].startswith("disk:")
        customers = client.get("/v1/customers/" + "0" * 32)
        assert customers.status_code == 404  # reads go on
        ballast.unlink()  # space returns: no restart
        assert enrol(client, 2) == 201
        assert client.get("/readyz").status_code == 200


def test_a_service_started_on_a_full_disk_opens_reads_and_refuses_new_work_until_space_returns(
    tmp_path: Path, disk: Path, sqlite_template: Path
) -> None:
    """Full before the service even starts (and a clean stop removed the WAL): the reserve is
    given up so the database opens; reads go on, new work is refused with the reason, and both
    writes and the reserve come back when space does."""
    with open_client(tmp_path, disk, sqlite_template, min_free_mb=1) as client:
        assert enrol(client, 1) == 201
        client.app.state.store.close()  # type: ignore[attr-defined]
    reserve = disk / "store.db-reserve"
    assert reserve.exists() and not (disk / "store.db-wal").exists()
    ballast = fill(disk)
    with open_client(tmp_path, disk, sqlite_template, min_free_mb=1, fresh=False) as client:
        assert not reserve.exists()
        refused = client.post("/v1/customers", json={"phone": "9160000002", "name": "Пётр"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "disk_low"
        assert client.get("/v1/customers/" + "0" * 32).status_code == 404  # reads go on
        ballast.unlink()
        assert enrol(client, 2) == 201
        assert reserve.exists()
