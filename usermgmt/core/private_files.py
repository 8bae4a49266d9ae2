"""Directories and files only their owner may read: 0700 and 0600, whatever the umask.

The default SQLite database holds password hashes and the generated JWT
secret; the mail directory of the file transport holds links with live
tokens. What usermgmt creates for them is its owner's alone. A directory the
user chose and that exists already is left as it is (it may be shared, like
``/tmp``), except usermgmt's own data directory, which is made 0700.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from usermgmt.core.config import data_dir

log = logging.getLogger("usermgmt.files")

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0700.

    Raises OSError if a directory cannot be created.
    """
    directory = Path(directory).expanduser()
    missing: list[Path] = []
    level = directory
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    for level in reversed(missing):
        try:
            level.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it first: theirs to set
            continue
        os.chmod(level, DIR_MODE)  # mkdir's mode is narrowed by the umask, chmod's is not
    home = data_dir().expanduser()
    if _same_or_inside(directory, home) and home.is_dir():
        try:
            info = home.stat()
            # A shared directory (sticky, like /tmp) or another user's is never narrowed.
            shared = info.st_mode & 0o1000 or info.st_uid != os.geteuid()
            if not shared and info.st_mode & 0o777 != DIR_MODE:
                os.chmod(home, DIR_MODE)
        except OSError as exc:  # not ours to change (another owner, a read-only mount)
            log.warning("cannot make the data directory %s private: %s", home, exc.strerror)


def create_private_file(path: Path) -> bool:
    """Create an empty ``path`` with mode 0600 unless it exists; True if created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def _same_or_inside(path: Path, home: Path) -> bool:
    path, home = path.resolve(), home.resolve()
    return path == home or home in path.parents
