"""Bad inputs: a catalogue of hostile and broken requests, each sent to the HTTP API.

Every case names what it sends, the status it must get and a word the problem's
``detail`` must hold; a 5xx, a missing problem+json body, or a request that takes
longer than ``--slow`` seconds (a hang in the making) fails it. The data behind the
requests is checked afterwards: nothing a refused request carried was stored. Exits 1
when any case fails; with ``--report`` writes its section of docs/reliability.md.

Run: ``.venv/bin/python bench/bad_inputs.py [--report docs/reliability.md]``.
"""

from __future__ import annotations

import argparse
import csv as csv_module
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from report import write_section

from geogrid import accounts, demo
from geogrid.config import Settings
from geogrid.testing import scratch_database

ROOT = Path(__file__).resolve().parent.parent
INSIDE = (115.275, 37.772)  # in cell XWZ002002 of the demo township


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    word: str
    body: bytes | None = None
    content_type: str = "application/json"


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def _nested(depth: int) -> bytes:
    return b'{"line": ' + b"[" * depth + b"]" * depth + b"}"


def _ring(vertices: int) -> bytes:
    """A GeoJSON polygon with *vertices* points on a small circle, as request bytes."""
    import math

    x0, y0 = INSIDE
    points = ",".join(
        f"[{x0 + 0.001 * math.cos(2 * math.pi * k / vertices):.7f},{y0 + 0.001 * math.sin(2 * math.pi * k / vertices):.7f}]"
        for k in range(vertices)
    )
    first = points.split("],", 1)[0] + "]"
    return ('{"version": 1, "geometry": {"type": "Polygon", "coordinates": [[' + points + "," + first + "]]}}").encode()


GPX_XXE = (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           b'<gpx version="1.1"><trk><name>&xxe;</name></trk></gpx>')  # fmt: skip
GPX_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                         for i in range(1, 10))
              + b']><gpx version="1.1"><trk><name>&lol9;</name></trk></gpx>')  # fmt: skip
NEW = {"lon": INSIDE[0], "lat": INSIDE[1], "category": "garbage", "source": "hotline"}


def cases(settings: Settings) -> list[Case]:
    over = settings.max_upload_bytes + 1024
    return [
        # Coordinates
        Case("huge longitude", "POST", "/api/incidents", 422, "lon", _json({**NEW, "lon": 1e308})),
        Case(
            "NaN literal in JSON",
            "POST",
            "/api/incidents",
            422,
            "NaN is not a JSON number",
            b'{"lon": NaN, "lat": 37.77, "category": "garbage", "source": "hotline"}',
        ),
        Case(
            "Infinity literal in JSON",
            "POST",
            "/api/incidents",
            422,
            "Infinity is not a JSON number",
            b'{"lon": 115.27, "lat": -Infinity, "category": "garbage", "source": "hotline"}',
        ),
        Case(
            "lat/lon swapped",
            "POST",
            "/api/incidents",
            422,
            "swapped",
            _json({**NEW, "lon": INSIDE[1], "lat": INSIDE[0]}),
        ),
        Case(
            "number with 400 digits",
            "POST",
            "/api/incidents",
            422,
            "out of range",
            _json({**NEW, "gps_accuracy_m": 10**400}),
        ),
        Case(
            "huge coordinates in a boundary",
            "PUT",
            "/api/grids/XWZ002002",
            422,
            "finite",
            _json(
                {
                    "version": 1,
                    "geometry": {"type": "Polygon", "coordinates": [[[1e300, 0], [1e300, 1], [0, 1], [1e300, 0]]]},
                }
            ),
        ),
        Case(
            "NaN in a split line",
            "POST",
            "/api/grids/XWZ002002/split",
            422,
            "NaN is not a JSON number",
            b'{"line": {"type": "LineString", "coordinates": [[NaN, 37.77], [115.28, 37.78]]}}',
        ),
        Case("bbox of NaNs", "GET", "/api/incidents?bbox=nan,nan,nan,nan", 422, "bbox"),
        # GeoJSON
        Case(
            "empty geometry",
            "POST",
            "/api/grids/XWZ002002/split",
            422,
            "empty",
            _json({"line": {"type": "LineString", "coordinates": []}}),
        ),
        Case("empty object as geometry", "POST", "/api/grids/XWZ002002/split", 422, "geometry", _json({"line": {}})),
        Case(
            "GeoJSON nested 100,000 deep",
            "POST",
            "/api/grids/XWZ002002/split",
            422,
            "nested too deeply",
            _nested(100_000),
        ),
        Case(
            "geometry collection nested 200 deep",
            "POST",
            "/api/grids/XWZ002002/split",
            422,
            "nested more than",
            _json({"line": _deep_collection(200)}),
        ),
        Case(
            "self-intersecting boundary",
            "PUT",
            "/api/grids/XWZ002002",
            422,
            "valid",
            _json(
                {
                    "version": 1,
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [[115.27, 37.77], [115.28, 37.78], [115.28, 37.77], [115.27, 37.78], [115.27, 37.77]]
                        ],
                    },
                }
            ),
        ),
        Case("polygon of 1,000,000 vertices", "PUT", "/api/grids/XWZ002002", 422, "vertices", _ring(1_000_000)),
        # Files
        Case(
            "GPX with an external entity",
            "POST",
            "/api/patrols?format=gpx&person=1",
            422,
            "DOCTYPE",
            GPX_XXE,
            "application/gpx+xml",
        ),
        Case(
            "GPX billion laughs",
            "POST",
            "/api/patrols?format=gpx&person=1",
            422,
            "DOCTYPE",
            GPX_LAUGHS,
            "application/gpx+xml",
        ),
        Case(
            "CSV of fixes with a formula for a time",
            "POST",
            "/api/patrols?format=csv&person=1",
            422,
            "line 2",
            b"person,time,lon,lat\n1,=cmd|' /C calc'!A0,115.27,37.77\n",
            "text/csv",
        ),
        Case(
            "upload over the size limit",
            "POST",
            "/api/patrols?format=gpx&person=1",
            413,
            "limit",
            b"x" * over,
            "application/gpx+xml",
        ),
        # Requests
        Case("truncated JSON", "POST", "/api/incidents", 422, "JSON", b'{"lon": 115.27, "lat": '),
        Case("JSON that is not an object", "POST", "/api/incidents", 422, "object", b"[1, 2, 3]"),
        Case("NUL character in a query", "GET", "/api/incidents?category=a%00b", 422, ""),
        Case("page size past the limit", "GET", "/api/incidents?limit=100000000", 422, "limit"),
        Case(
            "date that does not exist",
            "POST",
            "/api/incidents",
            422,
            "date",
            _json({**NEW, "reported_at": "2026-13-45T25:61:00Z"}),
        ),
    ]


def _deep_collection(depth: int) -> dict:
    geom: dict = {"type": "LineString", "coordinates": [[115.27, 37.76], [115.28, 37.79]]}
    for _ in range(depth):
        geom = {"type": "GeometryCollection", "geometries": [geom]}
    return geom


def run(settings: Settings, slow_s: float) -> tuple[list[dict], dict]:
    from geogrid.api import create_app

    results = []
    with scratch_database(settings, "geogrid_bad_inputs") as engine:
        with engine.begin() as conn:
            demo.load(conn)
            conn.execute(sa.text("INSERT INTO people (id, name) OVERRIDING SYSTEM VALUE VALUES (1, 'someone')"))
            _, token = accounts.create_user(conn, "admin.bad", "admin")
            before = _counts(conn)
        client = create_app(settings, bind=engine).test_client()
        for case in cases(settings):
            began = time.perf_counter()
            response = client.open(case.path, method=case.method, data=case.body, content_type=case.content_type,
                                   headers={"Authorization": f"Bearer {token}",  # the words looked for are English
                                            "Accept-Language": "en"})  # fmt: skip
            took = time.perf_counter() - began
            problem = response.mimetype == "application/problem+json"
            detail = (response.get_json(silent=True) or {}).get("detail", "") if problem else response.text[:200]
            ok = response.status_code == case.status and problem and case.word.lower() in detail.lower()
            ok = ok and took < slow_s
            results.append({"name": case.name, "sent": f"{case.method} {case.path.split('?')[0]}",
                            "bytes": len(case.body or b""), "expected": case.status, "status": response.status_code,
                            "detail": detail, "seconds": round(took, 3), "ok": ok})  # fmt: skip
            print(f"[{'ok' if ok else 'FAILED'}] {case.name}: {response.status_code} in {took:.2f} s: {detail[:120]}")
        results.append(_formula_on_export(engine, Path(tempfile.mkdtemp(prefix="geogrid-bad-"))))
        with engine.connect() as conn:
            after = _counts(conn)
    return results, {"before": before, "after": after}


def _formula_on_export(engine, work: Path) -> dict:
    """A CSV import whose bad rows carry spreadsheet formulas: the reject file must not run them."""
    csv = work / "incidents.csv"
    csv.write_text("external_id,lon,lat,category,description\n"
                   "X1,200,37.77,garbage,\"=HYPERLINK(\"\"http://evil\"\",\"\"click\"\")\"\n"
                   "X2,115.27,95,garbage,+cmd|' /C calc'!A0\n", encoding="utf-8")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env["GEOGRID_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    began = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "geogrid"), "incidents", "import", str(csv)],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    took = time.perf_counter() - began
    rows = list(csv_module.DictReader(open(f"{csv}.rejects.csv", encoding="utf-8")))
    cells = [r["description"] for r in rows]
    ok = done.returncode == 0 and len(rows) == 2 and all(c.startswith("'") for c in cells)
    print(f"[{'ok' if ok else 'FAILED'}] formulas in the reject file: {cells}")
    return {"name": "CSV with formulas, exported as the reject file", "sent": "geogrid incidents import",
            "bytes": csv.stat().st_size, "expected": 0, "status": done.returncode,
            "detail": f"2 rows rejected (coordinates out of range); their descriptions exported as {cells}",
            "seconds": round(took, 3), "ok": ok}  # fmt: skip


def _counts(conn) -> dict[str, int]:
    tables = ("grids", "incidents", "incident_events", "patrol_tracks", "gps_fixes")
    return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def report_lines(results: list[dict], counts: dict) -> list[str]:
    passed = sum(r["ok"] for r in results)
    unchanged = counts["before"] == counts["after"]
    lines = ["## Bad inputs", "", "Written by `bench/bad_inputs.py`.", "",
             f"{passed} of {len(results)} hostile or broken requests refused as expected, none with a 5xx; "
             f"the slowest answer took {max(r['seconds'] for r in results):.2f} s. Records before and after: "
             f"{'unchanged' if unchanged else 'CHANGED'} ({', '.join(f'{k} {v}' for k, v in counts['after'].items())}).",
             "", "| input | request | bytes | status | seconds | detail |", "|---|---|---:|---:|---:|---|"]  # fmt: skip
    for r in results:
        mark = "" if r["ok"] else " (FAILED)"
        detail = r["detail"].replace("|", "\\|").replace("\n", " ")[:140]
        lines.append(f"| {r['name']}{mark} | {r['sent']} | {r['bytes']:,} | {r['status']} | {r['seconds']:.2f} "
                     f"| {detail} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=float, default=10.0, help="Seconds after which an answer counts as a failure.")
    parser.add_argument("--report", type=Path, help="Write the results as a section of this Markdown file.")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args()
    settings = Settings.from_env()
    results, counts = run(settings, args.slow)
    if args.report:
        write_section(args.report, "bad-inputs", report_lines(results, counts))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "counts": counts}, ensure_ascii=False, indent=1))
    sys.exit(0 if all(r["ok"] for r in results) and counts["before"] == counts["after"] else 1)


if __name__ == "__main__":
    main()
