"""The map every page starts from: Folium, with every script and style served by geogrid.

Folium points its maps and plugins at CDNs. A grid center's network may have no
internet, so :func:`offline` rewrites each resource a map uses to the copy installed
from the npm registry at set-up (``web/package.json``; served under ``/vendor/``),
and refuses a resource it does not know rather than let a page reach out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import folium
from branca.element import Element, Figure
from folium.map import CustomPane
from folium.plugins import VectorGridProtobuf

from geogrid.config import Settings

#: Folium's resource names -> files under the assets folder (``web/node_modules``).
VENDOR = {
    "leaflet": "leaflet/dist/leaflet.js",
    "leaflet_css": "leaflet/dist/leaflet.css",
    "markerclusterjs": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/dist/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "leaflet-heat.js": "leaflet.heat/dist/leaflet-heat.js",
    "leaflet_draw_js": "leaflet-draw/dist/leaflet.draw.js",
    "leaflet_draw_css": "leaflet-draw/dist/leaflet.draw.css",
    "vectorGrid": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
}
#: Where the app serves the assets folder.
VENDOR_PREFIX = "/vendor/"


class UnknownResource(ValueError):
    """A map element wants a script or style geogrid does not serve."""


def new_map(settings: Settings, bounds: tuple[float, float, float, float] | None) -> folium.Map:
    """An empty Folium map fitted to *bounds* (minlon, minlat, maxlon, maxlat), with the basemap."""
    m = folium.Map(tiles=None, width="100%", height="100%", control_scale=False, prefer_canvas=True, maxZoom=20,
                   zoom_start=12, location=(0, 0))  # fmt: skip
    # The scale bar (metric only: China measures in metres) is the page script's, see maps.js.
    # Only Leaflet: jQuery, Bootstrap and the icon fonts Folium also loads are not used.
    m.default_js = [("leaflet", VENDOR["leaflet"])]
    m.default_css = [("leaflet_css", VENDOR["leaflet_css"])]
    # The basemaps are the page script's (a switcher, and a shifted projection for GCJ-02 ones): see maps.js.
    if bounds is not None:
        west, south, east, north = bounds
        m.fit_bounds([[south, west], [north, east]])
    return m


#: The pane for vector-tile layers, above the embedded layers. Leaflet.VectorGrid 1.3's
#: own click events do not fire under Leaflet 1.9, so the tiles take no pointer events
#: and the page script answers map clicks by asking the API what is there.
TILES_PANE = "geogrid-tiles"


def tiles_pane(m: folium.Map) -> str:
    """Add (once) the pane vector tiles go in, and return its name."""
    if not any(isinstance(c, CustomPane) and c.name == TILES_PANE for c in m._children.values()):
        CustomPane(TILES_PANE, z_index=450, pointer_events=False).add_to(m)
    return TILES_PANE


def vector_grid(m: folium.Map, url: str, name: str, layer: str, style_js: str, *, show: bool = True,
                big_tiles: bool = False):  # fmt: skip
    """A Leaflet.VectorGrid layer of *url* tiles, drawn on canvas in the tiles pane.

    *style_js* styles the tiles' *layer*: a JS object literal, or a function of a
    feature's properties. Not interactive: see :data:`TILES_PANE`. *big_tiles*: 512-pixel
    tiles, a quarter as many requests for the same ground (VectorGrid puts the map's zoom in
    the URL whatever the tile size: ``size=512`` tells the server the tile is the one of the
    zoom before, see :func:`geogrid.api.maps.tile_zoom`).
    """
    # ``datum`` is the page's basemap datum: tiles for a GCJ-02 basemap are cut shifted (maps.js switches it).
    url += ("&" if "?" in url else "?") + ("size=512&" if big_tiles else "") + "datum={datum}"
    size = ', "tileSize": 512, "maxNativeZoom": 18' if big_tiles else ', "maxNativeZoom": 18'
    options = (
        '{"interactive": false, "pane": "' + tiles_pane(m) + '"' + size + ', "maxZoom": 22, "datum": "wgs84",'
        ' "rendererFactory": L.canvas.tile, "vectorTileLayerStyles": {"' + layer + '": ' + style_js + "}}"
    )
    return VectorGridProtobuf(url, name=name, options=options, show=show).add_to(m)


def offline(m: folium.Map, prefix: str = VENDOR_PREFIX) -> folium.Map:
    """Point every script and style of *m* and its layers at *prefix*; UnknownResource otherwise."""
    for element in _walk(m.get_root()):
        for attr in ("default_js", "default_css"):
            resources = getattr(element, attr, None)
            if not resources:
                continue
            local = []
            for name, url in resources:
                if url.startswith(prefix):
                    local.append((name, url))
                elif name in VENDOR:
                    local.append((name, prefix + VENDOR[name]))
                elif url in VENDOR.values():
                    local.append((name, prefix + url))
                else:
                    raise UnknownResource(f"{type(element).__name__} wants {name} from {url}; add it to VENDOR")
            setattr(element, attr, local)
    return m


def _walk(element) -> Iterator:
    yield element
    for child in list(getattr(element, "_children", {}).values()):
        yield from _walk(child)


def script_json(value) -> str:
    """*value* as JSON safe inside a ``<script>`` element (no ``</script>``, no HTML)."""
    return (
        json.dumps(value, ensure_ascii=False, default=str)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def extent(summary: list[dict]) -> tuple[float, float, float, float] | None:
    """The box around every level of :func:`geogrid.grids.queries.level_summary`; None when empty."""
    rows = [r for r in summary if r["xmin"] is not None]
    if not rows:
        return None
    return (min(r["xmin"] for r in rows), min(r["ymin"] for r in rows),
            max(r["xmax"] for r in rows), max(r["ymax"] for r in rows))  # fmt: skip


@dataclass(frozen=True)
class Rendered:
    """A map's parts for a page template: head (styles, scripts), body (the map div), script."""

    head: str
    body: str
    script: str
    map_name: str


def render(m: folium.Map, config: dict, nonce: str = "") -> Rendered:
    """Render *m* offline into parts, with *config* for the page script as a JSON element.

    Folium's inline ``<script>`` and ``<style>`` elements get *nonce*, the response's
    Content-Security-Policy nonce (user text never reaches them: it goes through
    :func:`script_json` or the page script's ``textContent``).
    """
    offline(m)
    figure: Figure = m.get_root()
    figure.render()
    tiles = [e.get_name() for e in _walk(m) if isinstance(e, VectorGridProtobuf)]
    config = {**config, "vector_tiles": tiles}
    data = Element(f'<script type="application/json" id="geogrid-config">{script_json(config)}</script>')
    return Rendered(
        head=_with_nonce(figure.header.render(), nonce),
        body=figure.html.render() + data.render(),
        script=figure.script.render(),
        map_name=m.get_name(),
    )


_INLINE = re.compile(r"<(script|style)(?=[\s>])(?![^>]*\bsrc=)")


def _with_nonce(html: str, nonce: str) -> str:
    """*html* with *nonce* on its inline script and style elements."""
    return _INLINE.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', html) if nonce else html
