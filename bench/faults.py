"""Faults: kill -9 mid-work, then prove nothing is half-written and the work can be finished.

Scenarios, each against a database of its own:

1. ``geogrid incidents import`` killed with SIGKILL while it inserts its third batch;
2. ``geogrid patrols import`` killed with SIGKILL while it stores tracks;
3. PostgreSQL itself (postmaster and every backend) killed with SIGKILL in the middle of
   a ``geogrid grids split`` (a separate embedded cluster, so nothing else is hit; a
   trigger holds the split open after its first piece is written, so the kill lands
   mid-transaction every time);
4. two planners saving the same grid version at once.

After each kill the database is checked: counts unchanged, no incident without its
event, no fixes without their track, no staging tables left, nothing in the audit
trail, the tiling check clean; then the same command is run again and must complete,
and once more to show it adds nothing. Exits 1 when any check fails.

Run: ``.venv/bin/python bench/faults.py [--incidents N] [--tracks N] [--report docs/reliability.md]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from report import write_section

from geogrid import accounts, demo
from geogrid.config import Settings
from geogrid.server import child_pids
from geogrid.store.db import make_engine
from geogrid.store.embedded import EmbeddedCluster
from geogrid.store.migrate import upgrade
from geogrid.testing import scratch_database

ROOT = Path(__file__).resolve().parent.parent
GEOGRID = [str(Path(sys.executable).parent / "geogrid")]
SPLIT_LINE = "LINESTRING(115.257 37.76, 115.258 37.79)"


@dataclass
class Scenario:
    name: str
    facts: dict = field(default_factory=dict)
    checks: list[tuple[str, bool]] = field(default_factory=list)

    def check(self, what: str, passed: bool) -> None:
        self.checks.append((what, bool(passed)))
        print(f"  [{'ok' if passed else 'FAILED'}] {what}", flush=True)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _, passed in self.checks)


# -- helpers ---------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _active(engine, database: str) -> list[tuple[str, str | None]]:
    """(query, wait event) of the other sessions working in *database*."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT query, wait_event FROM pg_stat_activity WHERE datname = :db AND state = 'active' "
                "AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).all()


def _wait_idle(engine, database: str, timeout_s: float = 60) -> bool:
    """Wait until no other session is connected to *database* (a killed client's backend has rolled back)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            others = conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": database},
            ).scalar_one()
        if not others:
            return True
        time.sleep(0.1)
    return False


def _kill_when(proc: subprocess.Popen, engine, database: str, ready, timeout_s: float = 120) -> list[str]:
    """SIGKILL *proc* once ``ready(seen)`` holds for the statements seen so far; those statements."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the command finished before the kill point (make the input larger): {seen[-3:]}")
        for query, wait in _active(engine, database):
            text = " ".join(query.split())[:80]
            if not seen or seen[-1] != text:
                seen.append(text)
            if wait == "PgSleep" and "PgSleep" not in seen:
                seen.append("PgSleep")
        if ready(seen):
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return seen
        time.sleep(0.01)
    raise RuntimeError("the kill point never came")


def _times(seen: list[str], prefix: str) -> int:
    return sum(1 for s in seen if s.startswith(prefix))


def _run(cmd: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _counts(conn) -> dict[str, int]:
    tables = ("grids", "incidents", "incident_events", "patrol_tracks", "gps_fixes", "audit_log")
    return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def _scratch_url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# -- scenarios -------------------------------------------------------------------


def incident_import_killed(settings: Settings, n: int, batch: int, work: Path) -> Scenario:
    s = Scenario("kill -9 of `geogrid incidents import` during its third batch")
    rng = random.Random(8)
    csv = work / "incidents.csv"
    with open(csv, "w", encoding="utf-8") as out:
        out.write("external_id,lon,lat,category,description\n")
        for i in range(n):
            lon, lat = 115.250 + rng.random() * 0.033, 37.750 + rng.random() * 0.026
            out.write(f"F{i},{lon:.6f},{lat:.6f},garbage,fault test {i}\n")
    with scratch_database(settings, "geogrid_faults_incidents") as engine:
        with engine.begin() as conn:
            demo.load(conn)
            before = _counts(conn)
        env = _env(GEOGRID_DATABASE_URL=_scratch_url(engine))
        cmd = [*GEOGRID, "incidents", "import", str(csv), "--batch-size", str(batch)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = _kill_when(proc, engine, engine.url.database, lambda seen: _times(seen, "WITH cells AS") >= 3)
        s.facts["killed"] = f"while inserting batch 3 of {-(-n // batch)} ({2 * batch:,} incidents inserted before it)"
        s.check("the import was killed with SIGKILL", proc.returncode == -signal.SIGKILL)
        s.check("its session ended (rolled back) after the kill", _wait_idle(engine, engine.url.database))
        with engine.connect() as conn:
            after = _counts(conn)
            stages = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'incident_stage%'"))
            s.check("after the kill: no incident, event or audit entry was stored", after == before)
            s.check("after the kill: no staging table left behind", stages.scalar_one() == 0)
        again = _run(cmd, env)
        s.check("running the same import again completes", again.returncode == 0)
        with engine.connect() as conn:
            done = _counts(conn)
            orphans = conn.execute(
                sa.text(
                    "SELECT count(*) FROM incidents i WHERE NOT EXISTS "
                    "(SELECT 1 FROM incident_events e WHERE e.incident_id = i.id)"
                )  # fmt: skip
            ).scalar_one()
        s.check(f"then all {n:,} incidents are there, each with its event",
                done["incidents"] == n and done["incident_events"] == n and orphans == 0)  # fmt: skip
        third = _run(cmd, env)
        with engine.connect() as conn:
            s.check("a third run adds nothing", third.returncode == 0 and _counts(conn)["incidents"] == n)
        s.facts["statements seen before the kill"] = len(seen)
    return s


def patrol_import_killed(settings: Settings, tracks: int, fixes_per_track: int, work: Path) -> Scenario:
    s = Scenario("kill -9 of `geogrid patrols import` while it stores tracks")
    gpx = work / "patrols.gpx"
    start = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)
    rng = random.Random(9)
    with open(gpx, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="faults" '
                  'xmlns="http://www.topografix.com/GPX/1/1">\n')  # fmt: skip
        for t in range(tracks):
            out.write("<trk><trkseg>\n")
            lon, lat = 115.252 + rng.random() * 0.02, 37.752 + rng.random() * 0.02
            for k in range(fixes_per_track):
                lon += rng.uniform(-1, 1) * 0.00008
                lat += rng.uniform(-1, 1) * 0.00008
                at = start + dt.timedelta(hours=t, seconds=5 * k)
                out.write(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><time>{at:%Y-%m-%dT%H:%M:%SZ}</time></trkpt>\n')
            out.write("</trkseg></trk>\n")
        out.write("</gpx>\n")
    total = tracks * fixes_per_track
    with scratch_database(settings, "geogrid_faults_patrols") as engine:
        with engine.begin() as conn:
            demo.load(conn)
            person = conn.execute(sa.text("INSERT INTO people (name) VALUES ('faults') RETURNING id")).scalar_one()
            before = _counts(conn)
        env = _env(GEOGRID_DATABASE_URL=_scratch_url(engine))
        cmd = [*GEOGRID, "patrols", "import", str(gpx), "--person", str(person)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Killed once a track's fixes are stored and its summary is being written (each
        # statement takes milliseconds, so the kill lands a few tracks into the file).
        seen = _kill_when(
            proc,
            engine,
            engine.url.database,
            lambda seen: _times(seen, "INSERT INTO gps_fixes") and _times(seen, "UPDATE patrol_tracks"),
        )
        s.facts["killed"] = f"after storing at least one of {tracks} tracks ({total:,} fixes in the file)"
        s.check("the import was killed with SIGKILL", proc.returncode == -signal.SIGKILL)
        s.check("its session ended (rolled back) after the kill", _wait_idle(engine, engine.url.database))
        with engine.connect() as conn:
            s.check("after the kill: no track, fix or audit entry was stored", _counts(conn) == before)
        again = _run(cmd, env)
        s.check("running the same import again completes", again.returncode == 0)
        with engine.connect() as conn:
            done = _counts(conn)
            declared = conn.execute(sa.text("SELECT coalesce(sum(fix_count), 0) FROM patrol_tracks")).scalar_one()
        s.check(f"then {tracks} tracks hold every kept fix ({done['gps_fixes']:,} of {total:,} in the file)",
                done["patrol_tracks"] >= tracks and done["gps_fixes"] == declared and done["gps_fixes"] > 0)  # fmt: skip
        third = _run(cmd, env)
        with engine.connect() as conn:
            s.check("a third run adds nothing", third.returncode == 0 and _counts(conn) == {
                **done, "audit_log": _counts(conn)["audit_log"]})  # fmt: skip
        s.facts["statements seen before the kill"] = len(seen)
    return s


def postgres_killed_during_split(work: Path) -> Scenario:
    s = Scenario("kill -9 of PostgreSQL (postmaster and every backend) in the middle of a split")
    home = work / "pg-home"
    settings = Settings.from_env(home=home, database_url=None)
    cluster = EmbeddedCluster(home)
    cluster.up()
    engine = make_engine(settings)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            demo.load(conn)
            # Holds the split open once its first piece is written, so the kill lands mid-transaction.
            conn.execute(sa.text("""
                CREATE FUNCTION fault_pause() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$;
                CREATE TRIGGER fault_pause AFTER INSERT ON grids FOR EACH ROW
                    WHEN (NEW.code LIKE 'XWZ001%') EXECUTE FUNCTION fault_pause();
            """))  # fmt: skip
            before = _counts(conn)
            grids_before = conn.execute(
                sa.text("SELECT code, version, valid_to IS NULL FROM grids ORDER BY 1, 2")
            ).all()
        env = _env(GEOGRID_HOME=str(home))
        cmd = [*GEOGRID, "grids", "split", "XWZ001002", "--line", SPLIT_LINE]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not any(w == "PgSleep" for _, w in _active(engine, "geogrid")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the split never reached its pause: {proc.communicate()}")
            time.sleep(0.02)
        engine.dispose()
        killed = _kill_server(cluster)
        s.facts["killed"] = (
            f"{killed} PostgreSQL processes, while the split's transaction had retired the cell "
            "and written its first piece"
        )
        _, err = proc.communicate(timeout=60)
        s.check("the split failed with a clear error", proc.returncode != 0 and err.strip().startswith("geogrid:"))
        s.facts["the split said"] = err.strip().splitlines()[-1][:300] if err.strip() else ""
        began = time.monotonic()
        cluster.up()
        s.facts["restart with crash recovery"] = f"{time.monotonic() - began:.1f} s"
        engine = make_engine(settings)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER fault_pause ON grids; DROP FUNCTION fault_pause()"))
        with engine.connect() as conn:
            grids_after = conn.execute(sa.text("SELECT code, version, valid_to IS NULL FROM grids ORDER BY 1, 2")).all()
            s.check("after restart: every grid and version exactly as before", grids_after == grids_before)
            s.check("after restart: counts unchanged, nothing in the audit trail", _counts(conn) == before)
        check = _run([*GEOGRID, "grids", "validate"], env)
        s.check("after restart: the tiling check finds no problem", check.returncode == 0)
        again = _run(cmd, env)
        s.check("running the same split again completes", again.returncode == 0)
        check = _run([*GEOGRID, "grids", "validate"], env)
        with engine.connect() as conn:
            current = conn.execute(
                sa.text("SELECT count(*) FROM grids WHERE parent_code = 'XWZ001' AND valid_to IS NULL")
            ).scalar_one()
        s.check("then the cell is in two pieces and the hierarchy still tiles", current == 3 and check.returncode == 0)
    finally:
        engine.dispose()
        cluster.down()
    return s


def _kill_server(cluster: EmbeddedCluster) -> int:
    """SIGKILL the postmaster and all its children at once, as a crash would; how many."""
    postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    children = child_pids(postmaster)
    for pid in [postmaster, *children]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 1 + len(children)


def two_planners_at_once(settings: Settings) -> Scenario:
    s = Scenario("two planners saving the same grid version at once")
    from geogrid.api import create_app

    with scratch_database(settings, "geogrid_faults_planners") as engine:
        with engine.begin() as conn:
            demo.load(conn)
            tokens = [accounts.create_user(conn, f"planner.{i}", "planner")[1] for i in (1, 2)]
            geometry = conn.execute(
                sa.text("SELECT ST_AsGeoJSON(geom) FROM grids WHERE code = 'XWZ002002' AND valid_to IS NULL")
            ).scalar_one()
        app = create_app(settings, bind=engine)
        answers: dict[int, int] = {}
        barrier = threading.Barrier(2)

        def save(i: int) -> None:
            client = app.test_client()
            barrier.wait()
            response = client.put("/api/grids/XWZ002002", json={"version": 1, "geometry": json.loads(geometry)},
                                  headers={"Authorization": f"Bearer {tokens[i]}"})  # fmt: skip
            answers[i] = response.status_code

        threads = [threading.Thread(target=save, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        s.facts["answers"] = sorted(answers.values())
        s.check("one save wins (200), the other is told it is stale (409)", sorted(answers.values()) == [200, 409])
        with engine.connect() as conn:
            versions = conn.execute(
                sa.text("SELECT version, valid_to IS NULL FROM grids WHERE code = 'XWZ002002' ORDER BY version")
            ).all()
            writers = (
                conn.execute(
                    sa.text(
                        "SELECT DISTINCT actor FROM audit_log WHERE table_name = 'grids' AND actor LIKE 'planner.%'"
                    )
                )
                .scalars()
                .all()
            )
        s.check("exactly one new version, made by the winner (audit trail)", versions == [(1, False), (2, True)]
                and len(writers) == 1)  # fmt: skip
    return s


def report_lines(scenarios: list[Scenario], elapsed: float) -> list[str]:
    survived = sum(s.ok for s in scenarios)
    lines = ["## Faults", "", "Written by `bench/faults.py`.", "",
             f"{survived} of {len(scenarios)} fault scenarios survived ({elapsed:.0f} s).", ""]  # fmt: skip
    for s in scenarios:
        lines.append(f"### {s.name}: {'survived' if s.ok else 'FAILED'}")
        lines.append("")
        for key, value in s.facts.items():
            lines.append(f"- {key}: {value}")
        for what, passed in s.checks:
            lines.append(f"- [{'x' if passed else ' '}] {what}")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--fixes-per-track", type=int, default=500)
    parser.add_argument("--report", type=Path, help="Write the results as a section of this Markdown file.")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args()
    settings = Settings.from_env()
    began = time.perf_counter()
    scenarios = []
    with tempfile.TemporaryDirectory(prefix="geogrid-faults-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # the embedded server's own user must reach its home below
        for run in (
            lambda: incident_import_killed(settings, args.incidents, args.batch_size, work),
            lambda: patrol_import_killed(settings, args.tracks, args.fixes_per_track, work),
            lambda: postgres_killed_during_split(work),
            lambda: two_planners_at_once(settings),
        ):
            scenario = run()
            print(f"{scenario.name}: {'survived' if scenario.ok else 'FAILED'}", flush=True)
            scenarios.append(scenario)
    lines = report_lines(scenarios, time.perf_counter() - began)
    if args.report:
        write_section(args.report, "faults", lines)
    if args.json:
        args.json.write_text(json.dumps([{"name": s.name, "ok": s.ok, "facts": s.facts, "checks": s.checks}
                                         for s in scenarios], ensure_ascii=False, indent=1))  # fmt: skip
    sys.exit(0 if all(s.ok for s in scenarios) else 1)


if __name__ == "__main__":
    main()
