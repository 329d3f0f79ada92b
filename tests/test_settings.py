"""Settings: defaults, the kept secret, clear errors, and the README table."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from server import settings as settings_mod

README = Path(__file__).resolve().parent.parent / "README.md"


def test_a_missing_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = settings_mod.load({"ONSITE_DATA_DIR": str(tmp_path)})
    second = settings_mod.load({"ONSITE_DATA_DIR": str(tmp_path)})
    assert len(first.secret_key) >= 40
    assert first.secret_key == second.secret_key
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_a_given_secret_key_wins_and_nothing_is_written(tmp_path):
    s = settings_mod.load({"ONSITE_DATA_DIR": str(tmp_path), "ONSITE_SECRET_KEY": "given"})
    assert s.secret_key == "given"
    assert not (tmp_path / "secret_key").exists()


def test_defaults_are_sqlite_in_var_on_localhost_8000(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings_mod.load({})
    assert s.data_dir == tmp_path / "var"
    assert s.sqlite_path == tmp_path / "var" / "onsite.sqlite3"
    assert (s.host, s.port, s.default_language, s.session_days) == ("127.0.0.1", 8000, "zh-CN", 30)


def test_a_bad_value_names_the_variable(tmp_path):
    with pytest.raises(ValueError, match="ONSITE_PORT"):
        settings_mod.load({"ONSITE_DATA_DIR": str(tmp_path), "ONSITE_PORT": "eighty"})


def test_the_readme_lists_every_setting_with_its_default():
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(ONSITE_[A-Z0-9_]+)` \| ([^|]*) \|", text, re.M))
    for spec in settings_mod.SPECS.values():
        assert spec.env in rows, f"README lacks {spec.env}"
        shown = rows[spec.env].strip().strip("`")
        assert shown == (spec.default or "(empty)"), f"README default of {spec.env}"
    assert set(rows) == {s.env for s in settings_mod.SPECS.values()}
