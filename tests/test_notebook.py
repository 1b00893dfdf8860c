"""The supervisor's weekly-review notebook runs top to bottom against the demo township."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_patrol_coverage_notebook_runs(demo_township_url, settings, monkeypatch):
    monkeypatch.setenv("GEOGRID_DATABASE_URL", demo_township_url)
    monkeypatch.setenv("GEOGRID_HOME", str(settings.home))
    notebook = nbformat.read(ROOT / "notebooks" / "patrol_coverage.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "week " in text and "cells," in text and "incidents this week" in text
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs if o.output_type == "execute_result")
    assert "folium" in html or "leaflet" in html.lower()  # the inline map
