"""The backup and file-mode promises of the docs, run as written: the cron and upgrade recipes work
twice, every failure is one plain line, and the database, its WAL and SHM files and every backup
are readable by their owner only."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.store.files import open_store
from tests.test_cli import bridge_cli
from tests.test_first_hour import CONFIG, seed

ENV = {"DB": "data/bridge.db"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config(tmp_path: Path) -> str:
    os.umask(0o022)  # the usual umask, which would leave files readable by everyone
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG)
    return str(path)


async def seeded(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    await seed(tmp_path / "data" / "bridge.db")
    return tmp_path / "data" / "bridge.db"


async def backup(*args: str, config: str) -> tuple[int, str, str]:
    return await bridge_cli("backup", *args, "--config", config, env=ENV)


async def test_the_cron_recipe_into_a_folder_works_twice(config: str, tmp_path: Path) -> None:
    await seeded(tmp_path)
    folder = tmp_path / "var" / "backups" / "bridge"  # not created beforehand: the first run makes it
    for _ in range(2):
        code, out, err = await backup(f"{folder}/", config=config)
        assert code == 0, err
        assert out.startswith("backed up ")
    copies = sorted(folder.iterdir())
    assert len(copies) == 2
    assert all(c.name.startswith("bridge-") and c.suffix == ".db" for c in copies)
    assert all(mode(c) == 0o600 for c in copies), [oct(mode(c)) for c in copies]


async def test_no_path_puts_timestamped_copies_beside_the_database(config: str, tmp_path: Path) -> None:
    await seeded(tmp_path)
    for _ in range(2):
        code, out, err = await backup(config=config)
        assert code == 0, err
    copies = list((tmp_path / "data" / "backups").iterdir())
    assert len(copies) == 2
    assert f"to {tmp_path / 'data' / 'backups'}/bridge-" in out


async def test_a_named_file_is_never_overwritten_unless_asked(config: str, tmp_path: Path) -> None:
    await seeded(tmp_path)
    target = tmp_path / "before-upgrade.db"
    assert (await backup(str(target), config=config))[0] == 0
    code, _, err = await backup(str(target), config=config)
    assert code == 1
    assert "already exists" in err
    assert "--overwrite" in err
    code, _, err = await backup(str(target), "--overwrite", config=config)
    assert code == 0, err
    assert mode(target) == 0o600


@pytest.mark.parametrize("where", ["blocker/sub/copy.db", "blocker/copy.db", "blocker/"])
async def test_a_folder_that_cannot_be_created_is_one_plain_line(config: str, tmp_path: Path, where: str) -> None:
    await seeded(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    code, _, err = await backup(f"{tmp_path}/{where}", config=config)
    assert code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 2, err  # "error: PATH: 1 problem(s):" and the problem
    assert "cannot create the folder" in err or "is a file" in err or "a file has that name" in err, err


async def test_a_folder_without_permission_is_one_plain_line(config: str, tmp_path: Path) -> None:
    await seeded(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root may write anywhere a mode forbids, but not into an immutable folder (EPERM, as a read-only mount)
    immutable = os.geteuid() == 0
    if immutable:
        await asyncio.to_thread(subprocess.run, ["chattr", "+i", str(locked)], check=True)
    try:
        code, _, err = await backup(str(locked / "sub") + "/", config=config)
    finally:
        if immutable:
            await asyncio.to_thread(subprocess.run, ["chattr", "-i", str(locked)], check=True)
    assert code == 1
    assert "no permission" in err
    assert "Traceback" not in err


async def test_the_database_and_its_wal_and_shm_files_are_private(config: str, tmp_path: Path) -> None:
    code, _, err = await bridge_cli("sessions", "list", "--config", config, env=ENV)  # creates the database
    assert code == 0, err
    db = tmp_path / "data" / "bridge.db"
    assert mode(db) == 0o600
    store = await open_store(load_config(config, env=ENV, platforms=False))
    try:
        await seed_into(store)
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            assert side.exists(), suffix
            assert mode(side) == 0o600, (suffix, oct(mode(side)))
    finally:
        await store.close()


async def seed_into(store: object) -> None:
    from bridge.store.store import Store
    from bridge.types import Author, ThreadRef

    assert isinstance(store, Store)
    thread = ThreadRef("github", "", "octo-org/octo-repo", "8")
    await store.accept(event_id="e9", session_key=thread.key, persona="assistant", thread=thread,
                       author=Author("ann", "ann"), content="hello")
