"""The planner's map: grids by level, labels, topology problems, and the editing tools.

A level with up to ``tile_threshold`` grids is embedded as GeoJSON; a bigger one is a
vector-tile layer read from ``/tiles/grids/{z}/{x}/{y}.pbf`` and shown from the zoom
at which its grids are a few pixels wide, so 100,000 cells open as fast as 100.
"""

from __future__ import annotations

import json
import math

import folium
from folium.plugins import Draw

from geogrid.layers.base import extent as extent_of
from geogrid.layers.base import new_map, vector_grid

#: Outline colour and width per depth in the hierarchy (top level first).
_COLOURS = ["#1f4e79", "#2e7d32", "#8e24aa", "#e65100", "#00838f", "#5d4037"]
_WEIGHTS = [4, 3, 2, 1.2, 1, 1]
#: A layer is drawn from the zoom at which its typical grid is this many pixels wide.
_MIN_PIXELS = 6


def level_style(depth: int) -> dict:
    """Leaflet path style for grids *depth* levels below the top."""
    return {
        "color": _COLOURS[min(depth, len(_COLOURS) - 1)],
        "weight": _WEIGHTS[min(depth, len(_WEIGHTS) - 1)],
        "fillOpacity": 0.04,
        "opacity": 0.9,
    }


def min_zoom(width_m: float | None, lat: float) -> int:
    """The first zoom at which a grid *width_m* metres wide is ``_MIN_PIXELS`` pixels wide."""
    if not width_m or width_m <= 0:
        return 0
    metres_per_pixel_z0 = 156_543.03 * math.cos(math.radians(lat))
    return max(0, min(20, math.ceil(math.log2(_MIN_PIXELS * metres_per_pixel_z0 / width_m))))


def planner_map(settings, summary: list[dict], features: dict[str, dict], *, at: str | None, can_edit: bool):
    """The planner map and the page script's configuration.

    *summary* is :func:`geogrid.grids.queries.level_summary`; *features* the embedded
    GeoJSON per level (levels over the threshold are absent: tiled). Topology problems
    are loaded by the page script after the map shows (the check can take a while).
    """
    by_level = {row["level"]: row for row in summary}
    levels = [name for name in settings.levels if name in by_level]
    extent = extent_of(summary)
    m = new_map(settings, extent)
    lat = (extent[1] + extent[3]) / 2 if extent else 0.0
    layers = []
    for depth, name in enumerate(levels):
        style = level_style(depth)
        row = by_level[name]
        if name in features:
            layer = folium.GeoJson(features[name], name=f"{name} ({row['n']})",
                                   style_function=lambda f, s=style: s, zoom_on_click=False)  # fmt: skip
            layer.add_to(m)
            layers.append({"level": name, "kind": "geojson", "var": layer.get_name(), "count": row["n"],
                           "style": style, "min_zoom": 0})  # fmt: skip
        else:
            zoom = min_zoom(row["width_m"], lat)
            query = f"?level={name}" + (f"&at={at}" if at else "")
            # Not shown yet, and no minZoom option (it would stop the whole map zooming out):
            # the page script adds the layer from `min_zoom` on.
            layer = vector_grid(m, "/tiles/grids/{z}/{x}/{y}.pbf" + query, f"{name} ({row['n']}, tiles)", "grids",
                                json.dumps(style), show=False)  # fmt: skip
            layers.append({"level": name, "kind": "tiles", "var": layer.get_name(), "count": row["n"],
                           "style": style, "min_zoom": zoom})  # fmt: skip
    if can_edit:
        Draw(export=False, draw_options={"polyline": {"shapeOptions": {"color": "#d62728"}}, "polygon": False,
                                         "rectangle": False, "circle": False, "marker": False,
                                         "circlemarker": False},
             edit_options={"edit": False, "remove": False}).add_to(m)  # fmt: skip
    config = {
        "page": "grids", "levels": layers, "at": at, "can_edit": can_edit, "extent": extent,
    }  # fmt: skip
    return m, config
