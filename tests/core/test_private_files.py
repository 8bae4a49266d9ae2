"""What holds secrets at rest is its owner's alone: directories 0700, files 0600, any umask.

The default SQLite database holds password hashes and the generated JWT secret;
the file transport's messages hold reset and verification links.
"""

from __future__ import annotations

import os
import stat
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text

from usermgmt.core import migrate
from usermgmt.core.config import data_dir, default_database_url
from usermgmt.core.db import Database
from usermgmt.core.mail.transports import FileTransport


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _open_with_wal(url: str) -> Database:
    """A migrated database with a connection open, so its -wal and -shm files exist."""
    db = Database(url)
    migrate.upgrade(db)
    with db.write() as s:
        s.execute(text("INSERT INTO settings (key, value) VALUES ('k', 'v')"))
    return db


def _sqlite_files(path: Path) -> list[Path]:
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert all(f.exists() for f in files)
    return files


def test_the_default_database_is_private(umask):
    home = data_dir()
    assert not home.exists()
    db = _open_with_wal(default_database_url())
    try:
        assert _mode(home) == 0o700
        for file in _sqlite_files(home / "usermgmt.db"):
            assert _mode(file) == 0o600, file
    finally:
        db.dispose()


def test_an_existing_data_directory_is_made_private(umask):
    home = data_dir()
    home.mkdir(parents=True, mode=0o755)
    os.chmod(home, 0o755)
    db = Database(default_database_url())
    db.dispose()
    assert _mode(home) == 0o700


def test_a_database_at_a_chosen_path_is_private_without_changing_an_existing_directory(
    tmp_path, umask
):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    db = _open_with_wal(f"sqlite:///{shared / 'app.db'}")
    try:
        assert _mode(shared) == 0o755  # the user's directory: not ours to change
        for file in _sqlite_files(shared / "app.db"):
            assert _mode(file) == 0o600, file
    finally:
        db.dispose()


def test_directories_created_for_a_database_are_private(tmp_path, umask):
    db = Database(f"sqlite:///{tmp_path / 'a' / 'b' / 'app.db'}")
    db.dispose()
    assert _mode(tmp_path / "a") == 0o700
    assert _mode(tmp_path / "a" / "b") == 0o700
    assert _mode(tmp_path / "a" / "b" / "app.db") == 0o600


def test_an_existing_database_file_keeps_its_mode(tmp_path, umask):
    """Only what usermgmt creates is made private; a file the user made is theirs."""
    path = tmp_path / "mine.db"
    path.touch()
    os.chmod(path, 0o640)
    Database(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o640


def test_the_mail_directory_and_messages_are_private(umask):
    mail_dir = data_dir() / "mail"
    message = EmailMessage()
    message["Message-ID"] = "<reset-1@example.com>"
    message["To"] = "ada@example.com"
    message.set_content("https://example.com/reset?token=secret")
    written = Path(FileTransport(mail_dir).send(message))
    assert _mode(data_dir()) == 0o700
    assert _mode(mail_dir) == 0o700
    assert _mode(written) == 0o600


def test_a_shared_sticky_data_dir_is_left_as_it_is(tmp_path, monkeypatch):
    from usermgmt.core.private_files import private_dir

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    monkeypatch.setenv("USERMGMT_DATA_DIR", str(shared))
    private_dir(shared / "mail")
    assert shared.stat().st_mode & 0o7777 == 0o1777
    assert (shared / "mail").stat().st_mode & 0o777 == 0o700
