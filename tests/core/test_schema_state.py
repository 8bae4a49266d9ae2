"""The schema check every command runs reads the head and current revision without Alembic."""

import subprocess
import sys

from usermgmt.core import migrate
from usermgmt.core.db import Database


def test_head_from_the_files_is_alembics_head():
    assert migrate.head_revision() == migrate._alembic_head()


def test_schema_state_follows_upgrade_and_downgrade(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert migrate.schema_state(db).current is None
        migrate.upgrade(db)
        assert migrate.schema_state(db).up_to_date
        migrate.downgrade(db, "base")
        state = migrate.schema_state(db)
        assert state.current is None and not state.up_to_date
    finally:
        db.dispose()


def test_checking_an_up_to_date_schema_does_not_import_alembic(database_url):
    code = (
        "import sys\n"
        "from usermgmt.core.db import Database\n"
        "from usermgmt.core import migrate\n"
        f"db = Database({database_url!r})\n"
        "migrate.ensure_schema(db)\n"
        "db.dispose()\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
