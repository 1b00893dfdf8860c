"""Hostile and broken inputs (bench/bad_inputs.py): each refused with the right status and a reason, none a 5xx.

The catalogue lives in the script, which also writes its section of docs/reliability.md;
this test runs it and reads the results.
"""

from __future__ import annotations

import json

from tests.test_bench_smoke import run_bench


def test_every_bad_input_is_refused_with_a_reason_and_nothing_is_stored(settings, tmp_path):
    results = tmp_path / "bad.json"
    run_bench(settings, "bad_inputs.py", "--json", str(results))
    out = json.loads(results.read_text())
    names = {r["name"] for r in out["results"]}
    for must in ("NaN literal in JSON", "Infinity literal in JSON", "huge coordinates in a boundary",
                 "empty geometry", "GeoJSON nested 100,000 deep", "polygon of 1,000,000 vertices",
                 "GPX with an external entity", "GPX billion laughs", "upload over the size limit",
                 "CSV with formulas, exported as the reject file"):  # fmt: skip
        assert must in names
    for r in out["results"]:
        assert r["ok"] and r["status"] < 500, r
    assert out["counts"]["before"] == out["counts"]["after"]
