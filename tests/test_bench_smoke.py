"""The benchmarks still run (at a tiny size): a benchmark that rots is no measurement."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run_bench(settings, script: str, *args: str, **extra_env: str) -> str:
    env = {"GEOGRID_HOME": str(settings.home), "PATH": "/usr/bin:/bin", **extra_env}
    if settings.database_url:
        env["GEOGRID_DATABASE_URL"] = settings.database_url
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_assign_bench_runs_small(settings):
    out = run_bench(settings, "assign_bench.py", "--cells", "300", "--points", "3000", "--posts", "5",
                    "--database", "geogrid_bench_smoke")  # fmt: skip
    assert "3000 rows: 3000 new" in out
    assert "ratio geogrid assignment / geopandas sjoin:" in out
    assert "splits: 5 of 5 finished" in out and "EXPLAIN of the incidents a split assigns again" in out
    assert "general reassign after the splits: 0 of 3,000" in out and "(looking at every incident: 0 more moved" in out
    assert "POST /api/incidents with 300 cells: median" in out


def test_coverage_bench_runs_small(settings):
    out = run_bench(settings, "coverage_bench.py", "--workers", "4", "--hours", "0.5",
                    "--database", "geogrid_cov_bench_smoke")  # fmt: skip
    assert "400 cells, 4 workers, 720 fixes" in out
    assert "ratio geogrid / geopandas:" in out
    assert "one more track for one worker: 1 of 4 workers' rows recomputed" in out


def test_map_bench_runs_small(settings):
    # 200 cells over a threshold of 50: the big case is served as vector tiles.
    out = run_bench(settings, "map_bench.py", "--sizes", "20,200", "--cases", "50,300", "--case-cells", "100",
                    "--coverage", "4", "--coverage-hours", "0.2", "--runs", "1",
                    "--database", "geogrid_map_bench_smoke", GEOGRID_TILE_THRESHOLD="50")  # fmt: skip
    assert "/map/grids with 200 cells: page" in out
    assert "ratio 200 / 20 cells: page bytes" in out
    # The command center's board and dashboard: every call answered (a failing one stops the bench).
    assert "300 cases over 100 cells loaded" in out and "300 cases: board " in out and "dashboard page " in out
    assert "ratio 300 / 50 cases: board " in out and "target under 1 s with 300 cases: " in out
    # The coverage page of a day of 4 workers (144 cells): opened, the day computed once, then read.
    assert "/map/coverage, 4 workers (144 cells): first open (brings the day up to date)" in out


def test_load_test_runs_small_and_loses_nothing(settings, tmp_path):
    report = tmp_path / "reliability.md"
    out = run_bench(settings, "load.py", "--terminals", "4", "--operators", "2", "--seconds", "3",
                    "--database", "geogrid_load_smoke", "--report", str(report))  # fmt: skip
    assert "Nothing lost." in out and "| create incident |" in out
    assert report.read_text(encoding="utf-8").startswith("# Reliability figures")
