"""The supervisor's map: cells coloured by coverage or compliance, tracks per worker, uncovered parts."""

from __future__ import annotations

import json

import folium

from geogrid.layers.base import new_map, vector_grid

#: Coverage fraction bins (upper bounds) and their fill colours, light to dark.
FRACTION_BINS = [(0.0001, "#f7f7f7"), (0.3, "#fee5d9"), (0.6, "#fcae91"), (0.8, "#6baed6"), (1.01, "#08519c")]
COMPLIANCE_COLOURS = {"compliant": "#2ca02c", "not compliant": "#d62728", "no duty": "#bdbdbd"}
_TRACK_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999"]


def fraction_colour(fraction: float) -> str:
    """Fill colour for a covered fraction."""
    for bound, colour in FRACTION_BINS:
        if fraction < bound:
            return colour
    return FRACTION_BINS[-1][1]


def compliance_colour(properties: dict) -> str:
    """Fill colour for a cell's patrol-rule state."""
    if not properties.get("assigned"):
        return COMPLIANCE_COLOURS["no duty"]
    return COMPLIANCE_COLOURS["compliant" if properties.get("compliant") else "not compliant"]


#: With more workers than this the tracks are not in the page: each is fetched when it is shown.
EMBEDDED_WORKERS = 12


def coverage_map(settings, extent, *, cells: dict | None, tracks: dict | None, workers: list[dict], gaps: dict | None,
                 day: str, tiles_query: str | None = None, tiles_min_zoom: int = 0):  # fmt: skip
    """The map for *day* and the page script's configuration (layer names, workers, legend).

    *cells* embeds the coloured cells; with too many cells it is None and *tiles_query*
    (``date=...&grid=...``) reads them as vector tiles from ``/tiles/coverage``. *gaps*
    is None when they were not computed (too many cells: pick a grid).
    """
    m = new_map(settings, extent)
    base = {"color": "#555", "weight": 1, "fillOpacity": 0.55}  # the basemap shows through
    if cells is not None:
        by_fraction = folium.GeoJson(
            cells, name="coverage fraction",
            style_function=lambda f: {**base, "fillColor": fraction_colour(f["properties"]["fraction"])},
        )  # fmt: skip
        by_rule = folium.GeoJson(
            cells, name="patrol rule", show=False,
            style_function=lambda f: {**base, "fillColor": compliance_colour(f["properties"])},
        )  # fmt: skip
    else:
        url = "/tiles/coverage/{z}/{x}/{y}.pbf?" + tiles_query
        # Added by the page script from `min_zoom` on (see geogrid.layers.grids).
        by_fraction = vector_grid(m, url, "coverage fraction", "coverage", _tile_style(_FRACTION_JS, base), show=False,
                                  big_tiles=True)  # fmt: skip
        by_rule = vector_grid(m, url, "patrol rule", "coverage", _tile_style(_RULE_JS, base), show=False,
                              big_tiles=True)  # fmt: skip
    by_fraction.add_to(m)
    by_rule.add_to(m)
    gap_var = None
    if gaps is not None:
        gap_layer = folium.GeoJson(
            gaps, name="uncovered parts",
            style_function=lambda f: {"color": "#b10026", "weight": 1.5, "fillColor": "#b10026",
                                      "fillOpacity": 0.18, "dashArray": "4 3"},
        )  # fmt: skip
        gap_layer.add_to(m)
        gap_var = gap_layer.get_name()
    # *workers* (track_counts) in order; their tracks are in the page only with *tracks* (few workers).
    features: dict[int, list] = {}
    for feature in (tracks or {"features": []})["features"]:
        features.setdefault(feature["properties"]["person_id"], []).append(feature)
    worker_layers = []
    for n, worker in enumerate(workers):
        colour = _TRACK_COLOURS[n % len(_TRACK_COLOURS)]
        if tracks is None:  # the page script asks /api/coverage/tracks for them when they are shown
            worker_layers.append({"person_id": worker["person_id"], "person": worker["person"], "colour": colour,
                                  "var": None, "tracks": worker["tracks"]})  # fmt: skip
            continue
        layer = folium.GeoJson(
            {"type": "FeatureCollection", "features": features.get(worker["person_id"], [])},
            name=f"tracks {worker['person_id']}",
            style_function=lambda f, c=colour: {"color": c, "weight": 3, "opacity": 0.85},
        )  # fmt: skip
        layer.add_to(m)
        worker_layers.append({"person_id": worker["person_id"], "person": worker["person"], "colour": colour,
                              "var": layer.get_name(), "tracks": worker["tracks"]})  # fmt: skip
    config = {
        "page": "coverage", "day": day, "fraction": by_fraction.get_name(), "rule": by_rule.get_name(),
        "kind": "geojson" if cells is not None else "tiles", "min_zoom": tiles_min_zoom,
        "levels": list(settings.levels), "gaps": gap_var, "workers": worker_layers, "extent": extent,
        "legend": {"fraction": FRACTION_BINS, "rule": COMPLIANCE_COLOURS},
    }  # fmt: skip
    return m, config


# Tile styles as JS functions of a feature's properties (colours from the tables above).
_FRACTION_JS = (
    "function (p) { const bins = " + json.dumps(FRACTION_BINS) + "; let c = bins[bins.length - 1][1];"
    " for (const [bound, colour] of bins) { if (p.fraction < bound) { c = colour; break; } } return c; }"
)
_RULE_JS = (
    "function (p) { const c = " + json.dumps(COMPLIANCE_COLOURS) + ";"
    " return !p.assigned ? c['no duty'] : p.compliant ? c['compliant'] : c['not compliant']; }"
)


def _tile_style(fill_js: str, base: dict) -> str:
    """A JS style function: *base* with the fill colour *fill_js* computes from the properties."""
    style = json.dumps({**base, "fill": True})[:-1] + ', "fillColor": (' + fill_js + ")(p)}"
    return "function (p) { return " + style + "; }"
