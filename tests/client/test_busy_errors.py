"""A server's "busy" 503 is a busy database for the console, not one that went away."""

from usermgmt.client.errors import error_from
from usermgmt.core import errors
from usermgmt.core.db.errors import BUSY


def test_a_busy_503_is_database_busy_and_another_503_is_unavailable():
    busy = error_from(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": BUSY}}, "s")
    assert type(busy) is errors.DatabaseBusy and busy.message.startswith(BUSY)
    gone = error_from(
        503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "Database is unavailable"}}, "s"
    )
    assert type(gone) is errors.ServiceUnavailable
