"""A successful login clears the identifier's failed-login count (on both databases)."""

import pytest
from conftest import STRONG_PASSWORD

from usermgmt.core.errors import InvalidCredentials


def test_success_resets_the_failure_count(make_services, operator, ctx):
    services = make_services(lockout_threshold=2)
    services.users.create(operator, ctx, {"email": "t@example.com", "password": STRONG_PASSWORD})
    good = {"email": "t@example.com", "password": STRONG_PASSWORD}
    bad = {"email": "t@example.com", "password": "Wrong-Passw0rd"}
    with pytest.raises(InvalidCredentials):
        services.auth.login(ctx, bad)
    services.auth.login(ctx, good)
    with pytest.raises(InvalidCredentials):  # one failure again, not two: no lock
        services.auth.login(ctx, bad)
    assert services.auth.login(ctx, good).user.email == "t@example.com"
