"""Settings from the environment: the names, their case, and what wins."""

import pytest

from usermgmt.core.config import Settings, load_settings
from usermgmt.core.errors import ConfigurationError


def test_variables_are_read_by_name_in_any_case(monkeypatch, tmp_path):
    monkeypatch.setenv("USERMGMT_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("usermgmt_bcrypt_rounds", "12")
    monkeypatch.setenv("UserMgmt_Allow_Registration", "false")
    monkeypatch.setenv("USERMGMT_NOT_A_SETTING", "ignored")
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'a.db'}"
    assert settings.bcrypt_rounds == 12
    assert settings.allow_registration is False
    assert Settings().bcrypt_rounds == 12  # the class reads the environment too


def test_arguments_win_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("USERMGMT_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("USERMGMT_LOCKOUT_THRESHOLD", "9")
    url = f"sqlite:///{tmp_path / 'b.db'}"
    settings = load_settings(database_url=url, lockout_threshold=None)
    assert settings.database_url == url
    assert settings.lockout_threshold == 9  # None means "not given"


def test_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("USERMGMT_ACCESS_TOKEN_TTL", "soon")
    monkeypatch.setenv("USERMGMT_DATABASE_URL", "mysql://db/users")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert set(err.value.field_errors) == {"USERMGMT_ACCESS_TOKEN_TTL", "USERMGMT_DATABASE_URL"}
