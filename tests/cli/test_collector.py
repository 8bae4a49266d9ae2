"""The garbage collector paused while a command starts: it must come back on.

Each check runs in its own interpreter, so the test process's collector is never touched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_collection_resumes_with_the_start_up_objects_frozen():
    result = _run(
        """
        import gc, time
        from usermgmt.cli import collector
        collector.pause(resume_after=0.1)
        assert not gc.isenabled()
        deadline = time.monotonic() + 10
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gc.isenabled(), "still paused"
        assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
        """
    )
    assert result.returncode == 0, result.stderr


def test_a_forked_child_collects_at_once():
    result = _run(
        """
        import gc, os
        from usermgmt.cli import collector
        collector.pause(resume_after=600)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if gc.isenabled() else 7)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's collector stayed off"
        assert not gc.isenabled()  # the parent waits for its timer
        """
    )
    assert result.returncode == 0, result.stderr


def test_a_command_that_outlives_the_pause_collects_again(tmp_path):
    """`usermgmt` itself: a command still running after the pause has the collector on."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            import gc, sys, time
            from usermgmt.cli import app as cli_app
            from usermgmt.cli.collector import RESUME_AFTER

            @cli_app.app.command("probe-gc", hidden=True)
            def probe() -> None:
                # Paused by main, or already resumed (a slow start): then it was frozen.
                paused = not gc.isenabled() or gc.get_freeze_count() > 0
                time.sleep(RESUME_AFTER + 0.3)
                print(paused, gc.isenabled(), gc.get_freeze_count() > 0)

            sys.argv = ["usermgmt", "probe-gc"]
            cli_app.main()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]
