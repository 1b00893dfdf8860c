"""A grid worker's map for their phone: their own cells, coloured by what is still to do today.

The page script redraws the cells from ``/api/me/day`` after each upload of the track, and
adds the worker's position (the browser's geolocation), their cases and what they report.
"""

from __future__ import annotations

import folium

from geogrid.layers.base import new_map

#: Fill colour per cell state (geogrid.patrols.queries.person_day): to do, done, done with an approved 补签.
STATE_COLOURS = {"todo": "#ff7f0e", "done": "#2ca02c", "repaired": "#1f77b4"}


def worker_map(settings, extent, *, cells: dict):
    """The map with the worker's cells, and the page script's configuration."""
    m = new_map(settings, extent)
    layer = folium.GeoJson(
        cells, name="my cells",
        style_function=lambda f: {"color": "#333", "weight": 2, "fillOpacity": 0.35,
                                  "fillColor": STATE_COLOURS[f["properties"]["state"]]},
    )  # fmt: skip
    layer.add_to(m)
    return m, {"page": "worker", "cells": layer.get_name(), "colours": STATE_COLOURS}
