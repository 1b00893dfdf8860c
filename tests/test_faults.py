"""Faults (bench/faults.py at a small size): kill -9 of the app mid-import and of PostgreSQL mid-split.

The script kills for real (SIGKILL to the CLI process, to the postmaster and every
backend of a cluster of its own), then checks that nothing was half-written and that
running the same command again finishes the work; this test runs it and reads its results.
"""

from __future__ import annotations

import json

from tests.test_bench_smoke import run_bench


def test_nothing_is_half_written_after_kill_minus_nine(settings, tmp_path):
    results, report = tmp_path / "faults.json", tmp_path / "reliability.md"
    run_bench(settings, "faults.py", "--incidents", "6000", "--batch-size", "1000", "--tracks", "80",
              "--fixes-per-track", "300", "--json", str(results), "--report", str(report))  # fmt: skip
    scenarios = json.loads(results.read_text())
    assert len(scenarios) == 4
    for s in scenarios:
        assert s["ok"], s
        checks = dict(s["checks"])
        assert all(checks.values()) and len(checks) >= 2
    by_name = {s["name"]: dict(s["checks"]) for s in scenarios}
    imports = [c for n, c in by_name.items() if "import" in n]
    assert len(imports) == 2
    for checks in imports:
        assert checks["the import was killed with SIGKILL"]
        assert checks["running the same import again completes"] and checks["a third run adds nothing"]
    (split,) = [c for n, c in by_name.items() if "PostgreSQL" in n]
    assert split["after restart: every grid and version exactly as before"]
    assert split["after restart: the tiling check finds no problem"]
    text = report.read_text()
    assert "## Faults" in text and "4 of 4 fault scenarios survived" in text
