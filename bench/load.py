"""Load test: terminals uploading patrol fixes and operators using the command center, on loopback.

The app runs as `geogrid serve` does (waitress, ``GEOGRID_THREADS``) on 127.0.0.1 over
a throw-away database with the sample township. For ``--seconds``, ``--terminals``
threads each act as a grid worker's handset (POST /api/patrols: a minute of walking,
six fixes, one upload after another) and ``--operators`` threads each open
the command-center page, list incidents and register one (POST /api/incidents), in a
loop. Prints requests per second, p50/p99 latency per kind and the errors, then checks
that every fix and incident the server accepted is in the database. With ``--report``
it writes those figures to that Markdown file (docs/reliability.md).

Run: ``.venv/bin/python bench/load.py [--terminals 200] [--operators 20] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests
import sqlalchemy as sa
from report import write_section

from geogrid import accounts, demo
from geogrid.config import Settings
from geogrid.testing import scratch_database

KINDS = ("upload fixes", "open map page", "list incidents", "create incident")


class Results:
    """Latencies and outcomes per kind of request, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.fixes_accepted = 0
        self.incidents_accepted: set[int] = set()

    def record(self, kind: str, started: float, response: requests.Response | None, error: str | None = None):
        ms = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latency[kind].append(ms)
            if error or response is None or response.status_code >= 400:
                self.errors[kind].append(error or f"{response.status_code} {response.text[:120]}")


def terminal(base: str, token: str, person: int, lon: float, lat: float, stop: float, out: Results,
             every: float) -> None:  # fmt: skip
    session = requests.Session()
    next_at = time.perf_counter() + (person % 97) / 97 * every  # handsets are not in step
    session.headers["Authorization"] = f"Bearer {token}"
    start = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=person)  # distinct per worker
    n = 0
    while time.perf_counter() < stop:
        if every:
            if next_at >= stop:
                break
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += every
        rows = ["time,lon,lat"]
        for i in range(6):  # one upload: a minute of walking, a fix every 10 s
            t = start + dt.timedelta(seconds=10 * (6 * n + i))
            rows.append(f"{t.isoformat()},{lon + 0.00001 * (6 * n + i) % 0.002:.7f},{lat:.7f}")
        n += 1
        started = time.perf_counter()
        try:
            response = session.post(f"{base}/api/patrols?format=csv", data="\n".join(rows).encode(), timeout=30)
        except requests.RequestException as err:
            out.record("upload fixes", started, None, str(err))
            continue
        out.record("upload fixes", started, response)
        if response.status_code == 201:
            with out.lock:
                out.fixes_accepted += response.json()["stored"]


def operator(base: str, token: str, k: int, cell: tuple[float, float], stop: float, out: Results,
             think: float = 0.0) -> None:  # fmt: skip
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    n = 0
    while time.perf_counter() < stop:
        for kind, method, path, body in (
            ("open map page", "GET", "/map/incidents", None),
            ("list incidents", "GET", "/api/incidents?limit=100", None),
            ("create incident", "POST", "/api/incidents",
             {"lon": cell[0], "lat": cell[1], "category": "garbage", "source": "hotline",
              "external_id": f"load-{k}-{n}", "description": f"operator {k} call {n}"}),
        ):  # fmt: skip
            started = time.perf_counter()
            try:
                response = session.request(method, base + path, json=body, timeout=30)
            except requests.RequestException as err:
                out.record(kind, started, None, str(err))
                continue
            out.record(kind, started, response)
            if kind == "create incident" and response.status_code == 201:
                with out.lock:
                    out.incidents_accepted.add(response.json()["id"])
            if think:
                time.sleep(think)
        n += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--operators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--upload-every",
        type=float,
        default=10.0,
        help="Seconds between a handset's uploads (0: back to back, a stress test).",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="Seconds an operator pauses after each action (0: back to back, a stress test).",
    )
    parser.add_argument("--processes", type=int, help="Server processes (default GEOGRID_PROCESSES).")
    parser.add_argument("--section", default="load", help="Name of the report section to write.")
    parser.add_argument("--database", default="geogrid_load")
    parser.add_argument("--report", type=Path, help="Write the figures to this Markdown file.")
    args = parser.parse_args()
    settings = Settings.from_env(secret_key="load")
    with scratch_database(settings, args.database) as engine:
        with engine.begin() as conn:
            demo.load(conn)
            cells = conn.execute(sa.text(
                "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
                "WHERE level = 'grid' ORDER BY code")).all()  # fmt: skip
            workers = []
            for w in range(args.terminals):
                who, token = accounts.create_user(conn, f"terminal{w}", "worker")
                code, x, y = cells[w % len(cells)]
                conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty) VALUES (:p, :c, "
                                     "'grid_helper')"), {"p": who.person_id, "c": code})  # fmt: skip
                workers.append((token, w, x, y))
            operators = [accounts.create_user(conn, f"operator{k}", "operator")[1] for k in range(args.operators)]
        # The server in its own process, as `geogrid serve` runs it (the clients' threads
        # would otherwise share its interpreter lock).
        port = _free_port()
        env = {**os.environ, "GEOGRID_DATABASE_URL": engine.url.render_as_string(hide_password=False),
               "GEOGRID_PORT": str(port), "GEOGRID_HOST": "127.0.0.1", "GEOGRID_SECRET_KEY": "load",
               "GEOGRID_PROCESSES": str(args.processes or settings.processes)}  # fmt: skip
        # Its log to a file: an unread pipe fills up and stalls the server.
        log = open(Path(tempfile.gettempdir()) / "geogrid-load-serve.log", "wb")  # noqa: SIM115
        server = subprocess.Popen([str(Path(sys.executable).parent / "geogrid"), "serve"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        _wait_for(base, server)
        out = Results()
        stop = time.perf_counter() + args.seconds
        threads = [threading.Thread(target=terminal, args=(base, t, w, x, y, stop, out, args.upload_every))
                   for t, w, x, y in workers]  # fmt: skip
        threads += [threading.Thread(target=operator, args=(base, t, k, cells[k % len(cells)][1:], stop, out,
                                                            args.think))
                    for k, t in enumerate(operators)]  # fmt: skip
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        server.terminate()
        server.wait(30)
        log.close()
        with engine.connect() as conn:
            stored_fixes = conn.execute(sa.text("SELECT count(*) FROM gps_fixes")).scalar_one()
            stored = set(conn.execute(sa.text("SELECT id FROM incidents")).scalars())
    lines = report(args, out, elapsed, stored_fixes, stored, settings.threads, args.processes or settings.processes)
    print("\n".join(lines))
    if args.report:
        write_section(args.report, args.section, lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(base: str, server: subprocess.Popen) -> None:
    for _ in range(100):
        if server.poll() is not None:
            raise SystemExit("geogrid serve exited; see its log in " + tempfile.gettempdir())
        try:
            requests.get(base + "/api/health", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("geogrid serve did not answer")


def report(args, out: Results, elapsed: float, stored_fixes: int, stored: set[int], threads: int,
           processes: int) -> list[str]:  # fmt: skip
    total = sum(len(v) for v in out.latency.values())
    errors = sum(len(v) for v in out.errors.values())
    pace = "back to back" if not args.think else f"pausing {args.think:g} s after each"
    lines = [
        f"## Load ({'operators back to back, a stress test' if not args.think else 'operators at a human pace'})",
        "",
        f"Written by `bench/load.py --think {args.think:g}`.",
        "",
        f"{args.terminals} terminals uploading fixes "
        f"({'back to back' if not args.upload_every else f'each every {args.upload_every:g} s'}) and "
        f"{args.operators} operators (map page, list, create, {pace}) for "
        f"{elapsed:.0f} s against `geogrid serve` ({processes} waitress processes of {threads} threads) on 127.0.0.1, "
        f"{os.cpu_count()} cores shared with the client threads and PostgreSQL: {total:,} requests, {total / elapsed:,.0f} per second, "
        f"{errors} errors.",
        "",
        "| request | count | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        ms = out.latency.get(kind, [])
        if ms:
            p50, p99 = statistics.median(ms), float(np.percentile(ms, 99))
            lines.append(f"| {kind} | {len(ms):,} | {p50:.0f} | {p99:.0f} | {len(out.errors.get(kind, []))} |")
    create = out.latency.get("create incident", [])
    if create:
        p99 = float(np.percentile(create, 99))
        lines += [
            "",
            f"Incident creation p99: {p99:.0f} ms (target under 200 ms: {'met' if p99 < 200 else 'NOT met'}).",
        ]
    lost_incidents = out.incidents_accepted - stored
    lines += [
        "",
        f"Accepted fixes: {out.fixes_accepted:,}; in the database: {stored_fixes:,} (more when an upload was stored "
        "but its answer timed out: the handset sends it again and the import stores it once). "
        f"Accepted incidents: {len(out.incidents_accepted):,}; missing from the database: {len(lost_incidents)}.",
        "Nothing lost." if stored_fixes >= out.fixes_accepted and not lost_incidents else "SOMETHING WAS LOST.",
    ]
    for kind, errs in out.errors.items():
        lines.append(f"First {kind} errors: {errs[:3]}")
    return lines


if __name__ == "__main__":
    main()
