"""The shipped systemd units pass ``systemd-analyze verify`` and score as hardened.

verify checks every directive and that ExecStart's program exists and runs, so
the units are checked as installed for this checkout: with ExecStart pointing
at this environment's ``usermgmt`` (everything else exactly as shipped).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .components import DEPLOY, need_binary

UNITS = ("usermgmt.service", "usermgmt-purge.service", "usermgmt-purge.timer")
SHIPPED_PATH = "/opt/usermgmt/bin/usermgmt"
# systemd-analyze security: 0 is the most locked down, 10 the least; "OK" is below 4.
MOST_EXPOSURE = 2.0


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    binary = need_binary("/usr/bin/systemd-analyze", "systemd")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The units with ExecStart at this environment's usermgmt, in a directory of their own."""
    here = Path(sys.executable).parent / "usermgmt"
    assert here.exists(), here
    folder = tmp_path_factory.mktemp("units")
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        (folder / name).write_text(text.replace(SHIPPED_PATH, str(here)))
    return folder


def test_the_units_verify_without_a_word(installed):
    result = analyze("verify", "--man=no", *(f"./{n}" for n in UNITS), cwd=installed)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_would_catch_a_broken_unit(installed, tmp_path):
    """The check is real: a missing program or a misspelt directive is reported."""
    broken = (installed / "usermgmt.service").read_text()
    broken = broken.replace(str(Path(sys.executable).parent), "/nonexistent")
    broken = broken.replace("ProtectSystem=strict", "ProtectSystem=strickt")
    (tmp_path / "usermgmt.service").write_text(broken)
    result = analyze("verify", "--man=no", "./usermgmt.service", cwd=tmp_path)
    assert result.returncode != 0
    assert "is not executable" in result.stderr
    assert "strickt" in result.stderr


@pytest.mark.parametrize("unit", ["usermgmt.service", "usermgmt-purge.service"])
def test_the_services_are_hardened(installed, unit):
    result = analyze("security", "--offline=yes", f"./{unit}", cwd=installed)
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert found, result.stdout
    assert float(found.group(1)) <= MOST_EXPOSURE, result.stdout
    text = (installed / unit).read_text()
    for directive in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes"):
        assert directive in text


def test_the_timer_starts_the_purge_and_both_share_the_user():
    service = (DEPLOY / "systemd" / "usermgmt.service").read_text()
    purge = (DEPLOY / "systemd" / "usermgmt-purge.service").read_text()
    assert f"ExecStart={SHIPPED_PATH} tokens purge" in purge
    same = (
        "User=usermgmt",
        "StateDirectory=usermgmt",
        "EnvironmentFile=/etc/usermgmt/usermgmt.env",
    )
    for line in same:
        assert line in service and line in purge
