"""Rate-limit settings: a bad value is refused; the defaults cost no `limits` import."""

import subprocess
import sys

import pytest

from usermgmt.core.config import load_settings
from usermgmt.core.errors import ConfigurationError


def test_a_bad_rate_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("USERMGMT_RATE_LIMIT_AUTH", "often")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "USERMGMT_RATE_LIMIT_AUTH" in err.value.field_errors


def test_default_rates_do_not_import_limits():
    code = (
        "import sys\n"
        "from usermgmt.core.config import load_settings\n"
        "s = load_settings()\n"
        "print(s.rate_limit_login, s.rate_limit_auth, 'limits' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["10/minute", "5/minute", "False"]
