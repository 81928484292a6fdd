"""The embedded default's database holds API tokens and sessions: only Agora's user may read it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def migrate(data_dir: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    environment.update(AGORA_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=environment,
        check=True,
        timeout=180,
        capture_output=True,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_and_its_folder_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    migrate(data_dir)
    database = data_dir / "agora.sqlite3"
    assert mode(database) == 0o600
    assert mode(data_dir) == 0o700
    for companion in (data_dir / "agora.sqlite3-wal", data_dir / "agora.sqlite3-shm"):
        if companion.exists():
            assert mode(companion) & 0o077 == 0


def test_a_file_left_readable_by_an_older_install_is_narrowed(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    database = data_dir / "agora.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    migrate(data_dir)
    assert mode(database) == 0o600
