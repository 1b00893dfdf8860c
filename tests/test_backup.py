"""Backups: a round trip through `geogrid db backup` / `db restore` keeps every row and every shape."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid.cli import main
from geogrid.errors import InvalidInput
from geogrid.store.backup import fingerprint, restore


def test_backup_and_restore_round_trip(demo_township_url, databases, settings, tmp_path):
    source = dataclasses.replace(settings, database_url=demo_township_url)
    file = tmp_path / "geogrid.dump"
    result = CliRunner().invoke(main, ["db", "backup", str(file)], env={"GEOGRID_DATABASE_URL": demo_township_url})
    assert result.exit_code == 0, result.output
    before = fingerprint(source)
    assert before["grids"] == 1 + 18 + 36 + 101 and before["gps_fixes"] > 100_000
    assert before["grids_md5"] in result.output

    target_url = databases.new()  # an empty, migrated database: restore replaces its schema and rows
    restored = CliRunner().invoke(main, ["db", "restore", str(file)], env={"GEOGRID_DATABASE_URL": target_url})
    assert restored.exit_code == 0, restored.output
    after = fingerprint(dataclasses.replace(settings, database_url=target_url))
    assert after == before
    # The restored database works: the append-only history and the geometry functions came along.
    engine = sa.create_engine(target_url)
    with engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("DELETE FROM incident_events"))
        conn.rollback()
        assert conn.execute(sa.text("SELECT round(geogrid_area_m2(geom, 32650)) > 0 FROM grids LIMIT 1")).scalar()
    engine.dispose()

    # Restoring over a database that holds grids needs --replace.
    with pytest.raises(InvalidInput, match="--replace"):
        restore(dataclasses.replace(settings, database_url=target_url), file)
    again = CliRunner().invoke(main, ["db", "restore", str(file), "--replace"],
                               env={"GEOGRID_DATABASE_URL": target_url})  # fmt: skip
    assert again.exit_code == 0, again.output
    assert fingerprint(dataclasses.replace(settings, database_url=target_url)) == before


def test_restore_refuses_a_missing_or_bad_file(settings, tmp_path, scratch_url):
    target = dataclasses.replace(settings, database_url=scratch_url)
    with pytest.raises(InvalidInput, match="no backup file"):
        restore(target, tmp_path / "nope.dump")
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a dump")
    result = CliRunner().invoke(main, ["db", "restore", str(junk)], env={"GEOGRID_DATABASE_URL": scratch_url})
    assert result.exit_code != 0 and "pg_restore failed" in result.output
