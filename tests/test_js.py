"""The phone app's own checks, run with the rest of the suite: the unit tests
of the outbox's pure logic (``node --test tests/js/``) and the type check of
pwa/ (tsc, against pwa/jsconfig.json for the pages and pwa/sw/jsconfig.json for
the service worker). Each takes a second or two.

Without Node or ``npm ci`` (no node_modules/typescript) they are skipped on a
developer's machine and fail in CI (``CI`` set), where both must be there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TSC = ROOT / "node_modules" / "typescript" / "bin" / "tsc"
CONFIGS = ["pwa/jsconfig.json", "pwa/sw/jsconfig.json"]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: it must be installed there)")
    pytest.skip(reason)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    assert node is not None
    return node


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)


def test_the_outbox_unit_tests_pass() -> None:
    result = _run(_node(), "--test", "tests/js/")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test tests/js/ failed:\n{output}"
    assert "# fail 0" in output, output


def test_the_phone_app_type_checks() -> None:
    node = _node()
    if not TSC.is_file():
        _missing("node_modules/typescript is missing: run npm ci")
    # Both at once: each is a few seconds of one core.
    runs = {
        config: subprocess.Popen(
            [node, str(TSC), "-p", config],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for config in CONFIGS
    }
    failed = []
    for config, run in runs.items():
        output, _ = run.communicate(timeout=90)
        if run.returncode != 0:
            failed.append(f"tsc -p {config} failed:\n{output}")
    assert not failed, "\n".join(failed)
