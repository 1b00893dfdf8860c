"""The command center's map: incidents clustered and coloured by status, a heatmap, the picked cell.

The layers start empty: the page script fills them from ``/api/incidents`` with the
filters the operator sets, so the map and the list always show the same query.
"""

from __future__ import annotations

import json

import folium
from folium.plugins import HeatMap, MarkerCluster

from geogrid.layers.base import new_map, vector_grid

#: Marker colour per workflow state; overdue ones get a thick black ring.
STATUS_COLOURS = {
    "reported": "#1f77b4",
    "dispatched": "#17becf",
    "in_progress": "#ff7f0e",
    "escalated": "#d62728",
    "reopened": "#9467bd",
    "resolved": "#2ca02c",
    "handled_on_spot": "#8c564b",
    "closed": "#7f7f7f",
    "accepted": "#6baed6",
    "rejected": "#bdbdbd",
    "rework": "#e377c2",
    "pending": "#bcbd22",
    "postponed": "#aec7e8",
}


def incidents_map(settings, extent, *, categories: list[dict], statuses: list[str], grids_fc: dict | None,
                  tiled: bool = False):  # fmt: skip
    """The map with an empty cluster, heat and highlight layer, and the page script's configuration.

    *tiled* (more incidents than the tile threshold): points come as vector tiles from
    ``/tiles/incidents`` (coloured by status, overdue ringed) instead of the cluster.
    """
    m = new_map(settings, extent)
    grid_var = None
    if grids_fc and grids_fc.get("features"):
        outline_style = {"color": "#1f4e79", "weight": 1, "fillOpacity": 0}
        # Not interactive: a click on the map is for the incidents, not the outline.
        outline = folium.GeoJson(grids_fc, name="grids", style_function=lambda f: outline_style, interactive=False)
        outline.add_to(m)
        grid_var = outline.get_name()
    cluster = MarkerCluster(name="incidents", options={"showCoverageOnHover": False, "maxClusterRadius": 40})
    cluster.add_to(m)
    heat = HeatMap([[0.0, 0.0, 0.0]], name="heatmap", show=False, radius=18, min_opacity=0.3)
    heat.add_to(m)
    picked = folium.FeatureGroup(name="picked cell")
    picked.add_to(m)
    tiles_var = None
    if tiled:
        point_style = ("function (p) { const c = " + json.dumps(STATUS_COLOURS) + "; return {radius: 5, fill: true,"
                 " fillOpacity: 0.9, fillColor: c[p.status] || '#333', color: p.overdue ? '#000' : '#fff',"
                 " weight: p.overdue ? 2.5 : 1}; }")  # fmt: skip
        layer = vector_grid(m, "/tiles/incidents/{z}/{x}/{y}.pbf", "incidents (tiles)", "incidents", point_style)
        tiles_var = layer.get_name()
    config = {
        "page": "incidents", "cluster": cluster.get_name(), "heat": heat.get_name(), "picked": picked.get_name(),
        "grids": grid_var, "colours": STATUS_COLOURS, "statuses": statuses, "categories": categories,
        "tiles": tiles_var,
        "extent": extent,
    }  # fmt: skip
    return m, config
