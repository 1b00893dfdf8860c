"""The embedded PostGIS: created on first use, idempotent, and recovers from a killed server.

These tests run their own cluster in a temporary GEOGRID_HOME, so they never disturb
the cluster the rest of the suite uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from geogrid.cli import main
from geogrid.errors import PostGISMissing
from geogrid.store import embedded
from geogrid.store.embedded import EmbeddedCluster, PgInstall
from geogrid.store.migrate import head_revision

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    # Under /tmp/pytest-of-<user>, a 0700 folder: as root this also proves the
    # server's own user is let through folders it could not otherwise enter.
    path = tmp_path_factory.mktemp("home")
    yield path
    EmbeddedCluster(path).down()


@pytest.fixture(scope="module")
def cluster(home) -> EmbeddedCluster:
    c = EmbeddedCluster(home)
    c.up()
    return c


def query(status, sql: str):
    with psycopg.connect(status.url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchone()[0] if cursor.description else None


def wait_until_stopped(cluster: EmbeddedCluster, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while cluster.status().running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cluster.status().running


def test_up_creates_cluster_with_postgis_on_loopback(cluster, home):
    status = cluster.status()
    assert status.running and (home / "pg" / "PG_VERSION").exists()
    assert status.url == f"postgresql://geogrid@127.0.0.1:{status.port}/geogrid"
    assert query(status, "SELECT current_setting('listen_addresses')") == "127.0.0.1"
    query(status, "CREATE EXTENSION IF NOT EXISTS postgis")
    assert query(status, "SELECT postgis_lib_version()").startswith("3.")
    hba = (home / "pg" / "pg_hba.conf").read_text().split("\n")
    rules = [line.split() for line in hba if line and not line.startswith("#")]
    assert {r[-1] for r in rules} == {"trust"}
    assert {r[3] for r in rules if r[0] == "host"} == {"127.0.0.1/32", "::1/128"}


def test_up_twice_is_idempotent(cluster):
    first = cluster.status()
    again = cluster.up()
    assert again.running and again.pid == first.pid and again.port == first.port


def test_up_recovers_after_sigkill(cluster):
    before = cluster.status()
    query(before, "CREATE TABLE IF NOT EXISTS survives (n int); INSERT INTO survives VALUES (42)")
    os.kill(before.pid, signal.SIGKILL)
    wait_until_stopped(cluster)
    after = cluster.up()
    assert after.running and after.pid != before.pid
    assert query(after, "SELECT sum(n) FROM survives") == 42


def test_up_clears_a_stale_pid_file_naming_a_live_process(cluster, home):
    cluster.down()
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        port = int((home / "pg.port").read_text())
        (home / "pg" / "postmaster.pid").write_text(
            f"{stranger.pid}\n{home / 'pg'}\n{int(time.time())}\n{port}\n{cluster.socket_dir}\n"
            "127.0.0.1\n  5432001    32768\nready   \n"
        )
        assert not cluster.status().running
        status = cluster.up()
        assert status.running and status.pid != stranger.pid
        assert stranger.poll() is None, "an unrelated process must not be touched"
    finally:
        stranger.kill()
        stranger.wait()


def test_down_is_idempotent(cluster):
    assert cluster.down() is True
    assert cluster.down() is False
    assert not cluster.status().running
    assert cluster.up().running


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs the server to drop privileges")
def test_server_runs_unprivileged_when_started_as_root(cluster):
    pid = cluster.status().pid
    uid_line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    assert all(int(uid) != 0 for uid in uid_line.split()[1:])


def test_cli_db_up_status_down(home, cluster):
    runner = CliRunner()
    env = {"GEOGRID_HOME": str(home), "GEOGRID_DATABASE_URL": ""}
    for _ in range(2):
        result = runner.invoke(main, ["db", "up"], env=env)
        assert result.exit_code == 0, result.output
        assert "database running: postgresql://geogrid@127.0.0.1:" in result.output
        assert f"schema at {head_revision()}" in result.output
    status = runner.invoke(main, ["db", "status"], env=env)
    assert status.exit_code == 0, status.output
    lines = status.output.splitlines()
    assert lines[0] == f"url: {cluster.status().url}"
    assert any(line.startswith("PostGIS 3.") for line in lines)
    down = runner.invoke(main, ["db", "down"], env=env)
    assert down.output.strip() == "database stopped"
    stopped = runner.invoke(main, ["db", "status"], env=env)
    assert stopped.exit_code == 3 and "stopped" in stopped.output
    assert runner.invoke(main, ["db", "up"], env=env).exit_code == 0


def test_missing_postgis_is_one_clear_line(tmp_path, monkeypatch):
    bindir = Path(embedded.find_installs()[0].bindir)
    no_postgis = PgInstall(major=15, bindir=bindir, sharedir=tmp_path)
    monkeypatch.setattr(embedded, "find_installs", lambda: [no_postgis])
    with pytest.raises(PostGISMissing, match="make demo"):
        embedded.choose_install()
    result = CliRunner().invoke(main, ["db", "up"], env={"GEOGRID_HOME": str(tmp_path / "h"),
                                                         "GEOGRID_DATABASE_URL": ""})  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "geogrid: PostGIS is not installed for PostgreSQL 15: run `make demo` or `make test`, "
        "which install it from the OS packages"
    ]
    assert not (tmp_path / "h" / "pg").exists()


def test_database_url_means_nothing_is_started(tmp_path, scratch_url):
    env = {"GEOGRID_HOME": str(tmp_path), "GEOGRID_DATABASE_URL": scratch_url}
    result = CliRunner().invoke(main, ["db", "up"], env=env)
    assert result.exit_code == 0, result.output
    assert "nothing to start" in result.output
    status = CliRunner().invoke(main, ["db", "status"], env=env)
    assert status.exit_code == 0 and "PostGIS 3." in status.output
    assert not (tmp_path / "pg").exists()
