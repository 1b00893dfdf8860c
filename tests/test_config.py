"""Settings come from GEOGRID_* variables and are validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from geogrid.config import DEFAULT_LEVELS, Settings
from geogrid.errors import ConfigError


def test_defaults():
    s = Settings.from_env({})
    assert s.levels == DEFAULT_LEVELS == ("township", "village", "grid", "cell")
    assert s.home == Path("var").absolute() and s.database_url is None
    assert s.timezone == "Asia/Shanghai"


def test_environment_is_read():
    s = Settings.from_env({
        "GEOGRID_HOME": "/srv/gg", "GEOGRID_LEVELS": "city, township ,village",
        "GEOGRID_MAX_UPLOAD_BYTES": "1000", "GEOGRID_DATABASE_URL": "postgresql://x@h/db",
    })  # fmt: skip
    assert s.home == Path("/srv/gg") and s.levels == ("city", "township", "village")
    assert s.max_upload_bytes == 1000 and s.database_url == "postgresql://x@h/db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GEOGRID_PORT": "eighty"}, "GEOGRID_PORT must be an integer"),
        ({"GEOGRID_PORT": "70000"}, "TCP port"),
        ({"GEOGRID_LEVELS": "a,,b"}, "at least one level"),
        ({"GEOGRID_LEVELS": "a,b,a"}, "names a level twice"),
        ({"GEOGRID_MAX_UPLOAD_BYTES": "0"}, "positive"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_secret_key_is_generated_once_and_kept(tmp_path):
    s = Settings(home=tmp_path)
    key = s.resolved_secret_key()
    assert len(key) == 64 and Settings(home=tmp_path).resolved_secret_key() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
