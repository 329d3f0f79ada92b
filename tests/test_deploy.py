"""The deployment files in deploy/ agree with the app: known settings, the
ports the unit serves on, the health check, the photo size, the stream."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server.settings import SPECS

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KNOWN = {spec.env for spec in SPECS.values()}


def test_the_env_example_names_only_settings_the_app_knows():
    names = re.findall(
        r"^#?\s*(ONSITE_[A-Z0-9_]+)=", (DEPLOY / "onsite.env.example").read_text(), re.M
    )
    assert names and set(names) <= KNOWN, set(names) - KNOWN
    for needed in ("ONSITE_DATABASE_URL", "ONSITE_SECRET_KEY", "ONSITE_PUBLIC_URL"):
        assert needed in names


def test_the_unit_serves_on_its_instance_port_with_the_env_file():
    unit = (DEPLOY / "onsite@.service").read_text()
    assert re.search(r"^ExecStart=\S*/onsite serve$", unit, re.M)
    assert "Environment=ONSITE_PORT=%i" in unit
    assert "EnvironmentFile=/etc/onsite/onsite.env" in unit
    assert "Restart=always" in unit


@pytest.mark.parametrize("name", ["Caddyfile", "nginx.conf"])
def test_each_proxy_balances_the_units_checks_health_and_takes_a_full_photo(name):
    text = (DEPLOY / name).read_text()
    assert "127.0.0.1:8001" in text and "127.0.0.1:8002" in text
    limit = re.search(r"(?:max_size|client_max_body_size)\s+(\d+)(?:MB|m)", text)
    assert limit and int(limit.group(1)) > int(SPECS["max_photo_mb"].default)


def test_caddy_checks_health_and_nginx_does_not_buffer_the_live_stream():
    assert "health_uri /healthz" in (DEPLOY / "Caddyfile").read_text()
    nginx = (DEPLOY / "nginx.conf").read_text()
    stream = nginx[nginx.index("location = /api/stream") :]
    assert "proxy_buffering off;" in stream and "proxy_read_timeout" in stream
    assert "X-Forwarded-Proto" in nginx  # https is known behind it: secure cookies, HSTS


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze here")
def test_systemd_reads_the_unit(tmp_path):
    unit = tmp_path / "onsite@8001.service"
    unit.write_text(
        (DEPLOY / "onsite@.service")
        .read_text()
        .replace("/opt/onsite/.venv/bin/onsite", shutil.which("true") or "/bin/true")
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert "Unknown key" not in result.stderr and "Invalid" not in result.stderr, result.stderr
