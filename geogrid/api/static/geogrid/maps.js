// geogrid map pages: what the Folium map cannot do alone. Talks to the JSON API with
// the page session (CSRF header on changes). Every user-supplied string reaches the
// page through textContent, never as HTML.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("geogrid-config").textContent);
  const map = findMap();
  const panel = {
    notice: document.getElementById("notice"),
    details: document.getElementById("details"),
  };

  L.control.scale({imperial: false}).addTo(map);

  // Day fields read YYYY-MM-DD: 2026/11/24, 2026.11.24 and 2026年11月24日 are written that way
  // when the field is left, and a day that is still not one is explained in the page's language.
  for (const field of document.querySelectorAll("input.day")) dayField(field);
  function dayField(field) {
    field.addEventListener("change", () => {
      const m = field.value.trim().match(/^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$/);
      if (m) field.value = m[1] + "-" + m[2].padStart(2, "0") + "-" + m[3].padStart(2, "0");
    });
    field.addEventListener("input", () => field.setCustomValidity(""));
    field.addEventListener("invalid", () => field.setCustomValidity(t("Type the day as year-month-day, e.g. 2026-11-29.")));
    return field;
  }

  function findMap() {
    const div = document.querySelector(".folium-map");
    return window[div.id];
  }

  // -- small helpers ----------------------------------------------------------------

  // Elements from text, and the page's words (common.js): t("Split {code}", {code}).
  const el = window.geogrid.el;
  const t = window.geogrid.translator(config.messages);

  // The page's name for a code (a status, duty, source, level, role, category...): codes stay in the API.
  function label(kind, code) {
    return (((config.labels || {})[kind] || {})[code]) || code;
  }

  // A coverage reason code ("visits_counted:1:2") in words.
  function reason(code) {
    const [name, ...fields] = String(code).split(":");
    const template = ((config.labels || {}).reason || {})[name];
    return template ? template.replace(/\{(\d+)\}/g, (m, n) => fields[Number(n)] ?? m) : code;
  }

  // A moment as pages show it: 2026-11-29 08:10 in the center's time zone (not the browser's).
  const clock = new Intl.DateTimeFormat("en-CA", {
    timeZone: config.timezone || "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  function when(iso) {
    if (!iso) return "";
    const parts = Object.fromEntries(clock.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }

  // Square metres as the page's language writes them.
  function m2(value) {
    return Math.round(value).toLocaleString(config.language === "en" ? "en" : "zh-CN") + " m²";
  }

  function notice(text, kind) {
    panel.notice.textContent = text || "";
    panel.notice.className = kind === "error" ? "error" : "";
  }

  function showDetails(title, rows, extra) {
    const dl = el("dl", {});
    for (const [key, value] of rows) {
      if (value === undefined || value === null || value === "") continue;
      dl.append(el("dt", {}, key), el("dd", {}, value));
    }
    panel.details.replaceChildren(el("h3", {}, title), dl, ...(extra || []));
    panel.details.hidden = false;
    panel.details.scrollIntoView({ block: "start" });  // the panel may be long: show what was asked for
  }

  // A case's or request's photos as thumbnails that open the photo, each with when and where it was taken.
  function photoStrip(photos) {
    const box = el("div", { class: "photos" });
    for (const p of photos || []) {
      let where = t("no position in the photo");
      if (p.distance_m !== null && p.distance_m !== undefined) where = t("taken {m} m from the case", { m: Math.round(p.distance_m) });
      else if (p.lon !== null && p.lon !== undefined) where = t("taken at {lat}, {lon}", { lat: p.lat.toFixed(5), lon: p.lon.toFixed(5) });
      box.append(el("figure", { class: "photo" },
        el("a", { href: p.url, target: "_blank", rel: "noopener" },
          el("img", { src: p.url + "?size=thumb", alt: t("Photo {id}", { id: p.id }), loading: "lazy" })),
        el("figcaption", {}, (p.taken_at ? when(p.taken_at) + " · " : "") + where)));
    }
    return box;
  }

  function hours(n) { return t("{n} h", { n }); }

  // A case's events in words: the step, who, to whom, the note (system notes translated).
  function caseHistory(inc) {
    return el("ol", { class: "history" }, (inc.events || []).map((e) => {
      const d = e.details || {};
      let what = e.from_status === e.to_status ? "" : (e.from_status ? label("status", e.from_status) + " → " : "") + label("status", e.to_status);
      if (d.step) what = label("step", d.step) + (d.step === "delay_requested" ? " (" + label("step", d.kind) +
        (d.hours ? " " + hours(d.hours) : "") + (d.until ? " " + when(d.until).slice(0, 10) : "") + ")" : "") +
        (d.deadline && d.step === "delay_approved" ? " → " + when(d.deadline) : "");
      if (d.return_visit) what = t("return visit") + " (" + label("step", d.method) + "): " + (d.satisfied ? t("satisfied") : t("not satisfied")) +
        (e.from_status !== e.to_status ? " → " + label("status", e.to_status) : "");
      if (d.check) what += " · " + label("step", d.check);
      const to = [d.department, d.person && d.person.name].filter(Boolean).join(" · ");
      return el("li", {}, el("span", { class: "at" }, when(e.at)), " " + e.actor + ": " + what + (to ? " (" + to + ")" : "") +
        (e.note ? " — " + label("note", e.note) : ""));
    }));
  }

  // Plain words for what the API refused.
  function explain(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || "";
    if (status === 401) return t("Your session ended: sign in again.");
    if (status === 403) return t("Your role may not do this. {detail}", { detail });
    if (status === 404) return t("Not found: {detail}", { detail });
    if (status === 409) return t("Someone changed this grid after you opened the map, so your edit was not saved. " +
      "Reload the map and try again. ({detail})", { detail });
    if (status === 422) return t("Refused: {detail}", { detail });
    if (status === 413) return t("Too large: {detail}", { detail });
    if (status === 429) return t("Too many attempts: {detail}", { detail });
    if (status >= 500) return t("The server failed ({status}). Nothing was changed; try again later.", { status });
    return t("Refused ({status}): {detail}", { status, detail });
  }

  // A JSON body, or a file (a Blob: a photo, a track) sent as it is.
  async function api(method, url, body) {
    const headers = { Accept: "application/json, application/geo+json" };
    const raw = body instanceof Blob;
    if (body !== undefined) headers["Content-Type"] = raw ? (body.type || "application/octet-stream") : "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = config.csrf;
    let response;
    try {
      response = await fetch(url, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error(t("The server could not be reached: {reason}", { reason: err.message }));
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
    if (!response.ok) throw new Error(explain(response.status, data));
    return data;
  }

  // The panel's tabs (buttons role=tab data-tab=X and sections #tab-X): one shown at a time. Returns a function
  // that shows a tab by name.
  function panelTabs() {
    const tabs = [...document.querySelectorAll("#panel [role=tab]")];
    function showTab(name) {
      for (const tab of tabs) {
        const on = tab.dataset.tab === name;
        tab.setAttribute("aria-selected", String(on));
        document.getElementById("tab-" + tab.dataset.tab).hidden = !on;
      }
    }
    for (const tab of tabs) tab.addEventListener("click", () => showTab(tab.dataset.tab));
    return showTab;
  }

  function ready() {
    document.body.dataset.ready = "1";
    document.body.dataset.readyAt = String(Math.round(performance.now()));  // for the benchmarks
  }

  // The map box *px* pixels around *latlng*, as the API's bbox parameter.
  function bboxAround(latlng, px) {
    const p = map.latLngToContainerPoint(latlng);
    const sw = map.containerPointToLatLng([p.x - px, p.y + px]);
    const ne = map.containerPointToLatLng([p.x + px, p.y - px]);
    return [sw.lng, sw.lat, ne.lng, ne.lat].map((v) => v.toFixed(7)).join(",");
  }

  // Vector tiles take no clicks (see geogrid.layers.base), and a bounding box is not a
  // cell: ask the API which grids contain the point (exactly, edges by the tie-break).
  // *level* may be an array of level names top down: then the deepest grid holding the point.
  async function gridAt(latlng, level, at) {
    const one = typeof level === "string";
    const fc = await api("GET", "/api/grids?point=" + latlng.lng.toFixed(7) + "," + latlng.lat.toFixed(7) +
      (one ? "&level=" + encodeURIComponent(level) : "") + (at ? "&at=" + at : ""));
    return fc.features[fc.features.length - 1] || null;
  }

  // -- basemaps ------------------------------------------------------------------------
  // The configured backgrounds (geogrid.basemaps) in a switcher; the choice is kept in
  // this browser. A GCJ-02 basemap (Amap and the like) is drawn with a projection that
  // shifts WGS84 to GCJ-02 before Web Mercator (gcoord, from npm), so every overlay lands
  // on its streets and every click, vertex or drawn line comes back as WGS84: the data
  // never leaves WGS84. Vector tiles are asked for with the datum and come cut shifted.
  const GCJ02 = L.Util.extend({}, L.CRS.EPSG3857, {
    code: "GCJ02",
    projection: {
      bounds: L.Projection.SphericalMercator.bounds,
      project(latlng) {
        const [lng, lat] = gcoord.transform([latlng.lng, latlng.lat], gcoord.WGS84, gcoord.GCJ02);
        return L.Projection.SphericalMercator.project(L.latLng(lat, lng));
      },
      unproject(point) {
        const ll = L.Projection.SphericalMercator.unproject(point);
        const [lng, lat] = gcoord.transform([ll.lng, ll.lat], gcoord.GCJ02, gcoord.WGS84);
        return L.latLng(lat, lng);
      },
    },
  });

  function useDatum(datum) {
    for (const name of config.vector_tiles || []) {
      const layer = window[name];
      if (layer) layer.options.datum = datum;
    }
    const crs = datum === "gcj02" ? GCJ02 : L.CRS.EPSG3857;
    if (map.options.crs === crs) return;
    const center = map.getCenter();
    map.options.crs = crs;
    // Leaflet has no public call to change the projection: a view reset re-projects every layer.
    map._resetView(center, map.getZoom(), true);
    map.fire("geogrid:crs");
  }

  function basemapSwitcher() {
    const info = config.basemaps || { layers: [], default: "none" };
    const choices = [{ name: "none", title: t("No basemap"), datum: "wgs84", layer: L.layerGroup() }];
    for (const b of info.layers) {
      const tiles = b.urls.map((url) => L.tileLayer(url, {
        subdomains: b.subdomains || "abc", attribution: b.attribution || "", maxNativeZoom: b.maxNativeZoom,
        maxZoom: 22,
      }));
      choices.push({ name: b.name, title: b.title, datum: b.datum, layer: L.layerGroup(tiles) });
    }
    let kept = null;
    try { kept = window.localStorage.getItem("geogrid.basemap"); } catch (err) { kept = null; }
    const first = choices.find((c) => c.name === kept) || choices.find((c) => c.name === info.default) || choices[0];
    const bases = {};
    for (const choice of choices) {
      choice.layer.geogridBasemap = choice;
      bases[choice.title] = choice.layer;
    }
    map.addLayer(first.layer);
    useDatum(first.datum);
    if (choices.length > 1) {
      L.control.layers(bases, null, { position: "topright", collapsed: window.innerWidth < 700 }).addTo(map);
    }
    document.body.dataset.basemap = first.name;
    map.on("baselayerchange", (e) => {
      const choice = e.layer.geogridBasemap;
      if (!choice) return;
      useDatum(choice.datum);
      document.body.dataset.basemap = choice.name;
      try { window.localStorage.setItem("geogrid.basemap", choice.name); } catch (err) { /* private mode */ }
    });
  }

  // -- planner -------------------------------------------------------------------------

  function gridsPage() {
    const selected = new Map(); // code -> {layer, feature}
    const highlight = L.geoJSON(null, { style: { color: "#d62728", weight: 4, fillOpacity: 0.1 }, interactive: false })
      .addTo(map);
    const layers = config.levels.map((info) => ({ ...info, layer: window[info.var] }));
    const problems = L.geoJSON(null, {
      style: { color: "#d00000", weight: 2, fillColor: "#ff4d4d", fillOpacity: 0.55 },
    }).addTo(map);
    let editing = null;

    function describeGrid(props) {
      return [props.code, props.name].filter(Boolean).join(" ");
    }

    function bindGeoJson(info) {
      info.layer.eachLayer((layer) => {
        const props = layer.feature.properties;
        layer.on("click", (e) => { if (!tiledShown()) pick(props.code, layer.feature, e.originalEvent.shiftKey); });
      });
    }

    // Labels (name, and the code under it) where they fit: the deepest level first (the grids a planner works on
    // at that zoom), then the levels above where there is room; a grid's label only when the grid is wide enough
    // on screen and the label would not cover one already placed. Redone as the map moves.
    const labelsLayer = L.layerGroup().addTo(map);
    function placeLabels() {
      labelsLayer.clearLayers();
      const placed = [];
      const view = map.getBounds().pad(0.1);
      const overlaps = (a) => placed.some((b) => a.x1 > b.x0 && a.x0 < b.x1 && a.y1 > b.y0 && a.y0 < b.y1);
      let shown = 0;
      for (const [depth, info] of [...layers.entries()].reverse()) {
        if (info.kind !== "geojson" || !map.hasLayer(info.layer)) continue;
        info.layer.eachLayer((layer) => {
          const bounds = layer.getBounds();
          if (!view.intersects(bounds)) return;
          const p = layer.feature.properties;
          const nw = map.latLngToContainerPoint(bounds.getNorthWest());
          const se = map.latLngToContainerPoint(bounds.getSouthEast());
          const name = p.name || p.code;
          const width = Math.max(name.length * 13, p.code.length * 7) + 8;  // CJK ~13 px, code ~7 px a character
          if (se.x - nw.x < width || se.y - nw.y < 34) return;
          // At the grid's centre, or, when that is off the screen, at the middle of the part of it on the screen.
          let centre = layer.getCenter();
          const screen = map.getBounds();
          if (!screen.contains(centre)) {
            const south = Math.max(bounds.getSouth(), screen.getSouth()), north = Math.min(bounds.getNorth(), screen.getNorth());
            const west = Math.max(bounds.getWest(), screen.getWest()), east = Math.min(bounds.getEast(), screen.getEast());
            centre = L.latLng((south + north) / 2, (west + east) / 2);
          }
          const at = map.latLngToContainerPoint(centre);
          const box = { x0: at.x - width / 2, x1: at.x + width / 2, y0: at.y - 17, y1: at.y + 17 };
          if (overlaps(box)) return;
          placed.push(box);
          shown += 1;
          labelsLayer.addLayer(L.marker(centre, { interactive: false, keyboard: false, icon: L.divIcon({
            className: "grid-name level-" + Math.min(depth, 3), iconSize: null,
            html: "",
          }) }).on("add", (e) => {
            const node = e.target.getElement();
            node.replaceChildren(el("span", { class: "inner" }, el("b", {}, name), el("br"), el("span", { class: "code" }, p.code)));
          }));
        });
      }
      document.body.dataset.labels = String(shown);
    }
    map.on("moveend zoomend", placeLabels);

    // The deepest tiled level on the map now, if any: clicks are for its grids.
    function tiledShown() {
      return layers.filter((i) => i.kind === "tiles" && map.hasLayer(i.layer)).pop() || null;
    }

    for (const info of layers) if (info.kind === "geojson") bindGeoJson(info);
    map.on("click", async (e) => {
      const info = tiledShown();
      if (!info || editing) return;
      const feature = await gridAt(e.latlng, info.level, config.at).catch((err) => { notice(err.message, "error"); });
      if (feature) pick(feature.properties.code, feature, e.originalEvent.shiftKey);
    });

    async function pick(code, feature, add) {
      if (editing) return;
      if (!add) selected.clear();
      const detail = await api("GET", "/api/grids/" + encodeURIComponent(code) + (config.at ? "?at=" + config.at : ""))
        .catch((err) => { notice(err.message, "error"); return null; });
      if (!detail) return;
      selected.set(code, detail);
      highlight.clearLayers();
      for (const f of selected.values()) highlight.addData(f);
      const p = detail.properties;
      showDetails(describeGrid(p), [
        [t("level"), label("level", p.level)], [t("version"), p.version], [t("area"), m2(p.area_m2)],
        [t("parents"), (p.parents || []).map((x) => x.code + " " + x.name).join(" › ")],
        [t("children"), p.children_count],
        [t("people"), (p.people || []).map((x) => x.name + " (" + label("duty", x.duty) +
          (x.phone ? ", " + x.phone : "") + ")").join(", ")],
        [t("selected"), Array.from(selected.keys()).join(", ")],
      ], config.can_edit && selected.size === 1 ? [renameForm(p), recodeForm(p)] : []);
    }

    // A new code for the selected grid: which codes would change first (the grids below whose codes begin with
    // it follow), then apply.
    function recodeForm(p) {
      const input = el("input", { type: "text", id: "recode-code", value: p.code, maxlength: 64, "aria-label": t("New code") });
      const form = el("form", { class: "rename", id: "recode" }, el("label", { for: "recode-code" }, t("New code")), input,
        el("button", { type: "submit" }, t("Change the code")));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const code = input.value.trim();
        const url = "/api/grids/" + encodeURIComponent(p.code) + "/recode";
        try {
          const preview = await api("POST", url, { code, version: p.version, dry_run: true });
          const changes = preview.retired.map((old, n) => old + " → " + preview.created[n].code).join(", ");
          const box = document.getElementById("edit-preview");
          const apply = el("button", { type: "button", id: "preview-apply" }, t("Apply"));
          const cancel = el("button", { type: "button", id: "preview-cancel" }, t("Cancel"));
          box.replaceChildren(el("h3", {}, t("New codes: preview")), el("p", {}, changes),
            el("p", {}, t("{carried} duties go with the codes; {moved} open incident(s) would move.",
              { carried: preview.duties.length, moved: preview.incidents_moved })), apply, cancel);
          box.hidden = false;
          box.scrollIntoView({ block: "start" });
          cancel.addEventListener("click", () => { box.hidden = true; });
          apply.addEventListener("click", async () => {
            apply.disabled = true;
            try {
              await api("POST", url, { code, version: p.version });
              done(t("Recoded: {changes}.", { changes }));
            } catch (err) { apply.disabled = false; notice(err.message, "error"); }
          });
        } catch (err) { notice(err.message, "error"); }
      });
      return form;
    }

    // Rename the selected grid (a new version with the same ground).
    function renameForm(p) {
      const input = el("input", { type: "text", id: "rename-name", value: p.name || "", maxlength: 100, "aria-label": t("New name") });
      const form = el("form", { class: "rename", id: "rename" }, el("label", { for: "rename-name" }, t("New name")), input,
        el("button", { type: "submit" }, t("Rename")));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const name = input.value.trim();
        if (!name) { notice(t("Type the new name."), "error"); return; }
        try {
          await api("POST", "/api/grids/" + encodeURIComponent(p.code) + "/rename", { name, version: p.version });
          done(t("Renamed {code} to {name}.", { code: p.code, name }));
        } catch (err) { notice(err.message, "error"); }
      });
      return form;
    }

    // Level switch: show one level, or all. Tiled levels show from their min_zoom on.
    for (const info of layers) info.wanted = true;
    document.getElementById("level").addEventListener("change", (e) => {
      // Put back in the hierarchy's order, top level first: the deeper a level, the higher it lies, so a click
      // selects a grid of the deepest level shown (the chosen one), never its parent.
      for (const info of layers) {
        info.wanted = !e.target.value || e.target.value === info.level;
        if (info.kind === "geojson" && map.hasLayer(info.layer)) map.removeLayer(info.layer);
      }
      for (const info of layers) if (info.kind === "geojson" && info.wanted) map.addLayer(info.layer);
      syncTiles();
      placeLabels();
    });

    // The legend: each level's line, top down.
    document.getElementById("level-legend").replaceChildren(...layers.map((info) => el("li", {},
      el("span", { class: "line", style: "border-top: " + info.style.weight + "px solid " + info.style.color }),
      label("level", info.level))));

    function syncTiles() {
      for (const info of layers) {
        if (info.kind !== "tiles") continue;
        const show = info.wanted && map.getZoom() >= info.min_zoom;
        if (show && !map.hasLayer(info.layer)) map.addLayer(info.layer);
        if (!show && map.hasLayer(info.layer)) map.removeLayer(info.layer);
      }
      zoomHint();
    }

    function zoomHint() {
      const hint = document.getElementById("zoom-hint");
      const hidden = layers.filter((i) => i.kind === "tiles" && i.wanted && map.getZoom() < i.min_zoom);
      hint.hidden = hidden.length === 0;
      hint.textContent = hidden.map((i) => t("Zoom in to level {zoom} to see the {count} grids of level {level}.",
        { zoom: i.min_zoom, count: i.count.toLocaleString(), level: label("level", i.level) })).join(" ");
    }
    map.on("zoomend", syncTiles);
    syncTiles();

    // Topology problems, loaded after the map shows.
    async function loadTopology() {
      const box = document.getElementById("topology");
      if (config.at) { box.replaceChildren(el("p", { class: "hint" }, t("Topology is checked for current boundaries."))); return; }
      const found = [];
      for (const code of config.tops || []) {
        let fc;
        try {
          fc = await api("GET", "/api/grids/" + encodeURIComponent(code) + "/topology");
        } catch (err) {
          box.replaceChildren(el("p", { class: "hint" }, t("The tiling check failed: {reason}", { reason: err.message })));
          document.body.dataset.topology = "error";
          return;
        }
        found.push(...fc.features);
      }
      problems.clearLayers();
      problems.addData({ type: "FeatureCollection", features: found });
      problems.eachLayer((layer) => {
        const p = layer.feature.properties;
        layer.bindTooltip(el("span", {}, label("problem", p.kind) + ": " + p.codes.join(", ") + " (" + m2(p.area_m2) + ")"));
      });
      const items = found.map((f, n) => el("li", {
        onclick: () => map.fitBounds(L.geoJSON(f).getBounds(), { maxZoom: 18 }),
      }, t("{kind} in {parent}: {area}, {width} wide", { kind: label("problem", f.properties.kind),
        parent: f.properties.parent_code, area: m2(f.properties.area_m2), width: f.properties.width_m + " m" })));
      box.replaceChildren(
        el("h3", {}, found.length ? t("Topology problems ({count})", { count: found.length })
          : t("Tiling checked: no gaps or overlaps")),
        el("ul", {}, items),
      );
      document.body.dataset.topology = String(found.length);
    }

    // Editing: split with a drawn line, merge the selection, move a boundary's vertices.
    if (config.can_edit) {
      document.getElementById("edit-tools").hidden = false;
      // A path drawn for "Redraw an edge" replaces the boundary between its ends; any other line splits.
      let redrawing = null;
      document.getElementById("redraw").addEventListener("click", () => {
        if (selected.size !== 1) { notice(t("Click one cell, then draw the new course of one of its edges."), "error"); return; }
        redrawing = Array.from(selected.keys())[0];
        const drawer = new L.Draw.Polyline(map, { shapeOptions: { color: "#ff7f0e", weight: 3 } });
        drawer.enable();
        // Started from here, not from the draw toolbar: the page gives the "finish" button.
        const finish = document.getElementById("redraw-done");
        finish.hidden = false;
        finish.onclick = () => { finish.hidden = true; drawer.completeShape(); };
        map.once("draw:drawstop", () => { finish.hidden = true; });
        notice(t("Click on the boundary of {code} where the new course starts, then at its bends and where it ends on the "
          + "boundary, then Finish: the grids on both sides follow.", { code: redrawing }));
      });
      map.on(L.Draw.Event.CREATED, async (e) => {
        if (e.layerType !== "polyline") return;
        if (redrawing) {
          const code = redrawing;
          redrawing = null;
          try {
            const result = await api("POST", "/api/grids/" + encodeURIComponent(code) + "/reshape", { path: e.layer.toGeoJSON().geometry });
            sessionStorage.setItem("geogrid-undo", JSON.stringify(result.versions));
            done(t("Redrew the edge of {codes}; {moved} open incident(s) moved to another cell.",
              { codes: Object.keys(result.versions).join(", "), moved: result.incidents_moved }));
          } catch (err) { notice(err.message, "error"); }
          return;
        }
        if (selected.size !== 1) { notice(t("Click the cell to split first, then draw the line across it."), "error"); return; }
        const code = Array.from(selected.keys())[0];
        const url = "/api/grids/" + encodeURIComponent(code) + "/split";
        const line = e.layer.toGeoJSON().geometry;
        notice(t("Working out the split of {code}…", { code }));
        try {
          const preview = await api("POST", url, { line, dry_run: true });
          showPreview(t("Split {code}", { code }), preview, true, async (plan) => {
            const result = await api("POST", url, plan ? { line, duties: plan } : { line });
            done(t("Split {code} into {pieces}.", { code, pieces: result.created.map((c) => c.code).join(", ") }) + " " +
              outcome(result));
          });
        } catch (err) { notice(err.message, "error"); }
      });
      document.getElementById("merge").addEventListener("click", async () => {
        if (selected.size < 2) { notice(t("Shift-click two or more adjacent cells to merge."), "error"); return; }
        const codes = Array.from(selected.keys());
        try {
          const preview = await api("POST", "/api/grids/merge", { codes, dry_run: true });
          showPreview(t("Merge {codes}", { codes: codes.join(", ") }), preview, false, async (plan) => {
            const body = { codes };
            if (plan) body.duties = plan[preview.created[0].code] || [];
            const result = await api("POST", "/api/grids/merge", body);
            done(t("Merged {codes} into {merged}.", { codes: codes.join(", "),
              merged: result.created.map((c) => c.code).join(", ") }) + " " + outcome(result));
          });
        } catch (err) { notice(err.message, "error"); }
      });

      // What an edit did to what hangs on the grids, in one sentence.
      function outcome(result) {
        return t("{carried} duties carried to the new grids, {ended} ended; {moved} open incident(s) moved to another cell.",
          { carried: result.duties.length, ended: result.dropped.length, moved: result.incidents_moved });
      }

      // A dry run shown before anything is written: the new grids numbered on the map, who
      // goes to which (a checkbox per person and new grid, all ticked: everyone goes
      // everywhere), how many open incidents move; then apply or cancel.
      const previewLayer = L.featureGroup().addTo(map);
      function showPreview(title, preview, split, apply) {
        const box = document.getElementById("edit-preview");
        previewLayer.clearLayers();
        const colours = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
        preview.created.forEach((c, n) => {
          const shape = L.geoJSON(c.geometry, { style: { color: colours[n % 5], weight: 3, fillOpacity: 0.25 } });
          shape.bindTooltip(el("span", {}, (split ? String(n + 1) + " · " : "") + c.code), { permanent: true, direction: "center" });
          previewLayer.addLayer(shape);
        });
        const people = new Map();
        for (const d of preview.duties) people.set(d.person_id, d);
        const rows = Array.from(people.values()).map((d) => el("tr", {},
          el("td", {}, d.person + " (" + label("duty", d.duty) + ")"),
          ...preview.created.map((c) => el("td", {}, el("input", {
            type: "checkbox", checked: true, "data-person": d.person_id, "data-grid": c.code,
            "aria-label": d.person + " → " + c.code,
          })))));
        const table = rows.length ? el("table", { class: "plan" },
          el("thead", {}, el("tr", {}, el("th", {}, t("People on duty")),
            ...preview.created.map((c, n) => el("th", { title: c.code, "data-code": c.code }, split ? String(n + 1) : c.code)))),
          el("tbody", {}, rows)) : el("p", { class: "hint" }, t("Nobody holds a duty on {codes}.",
          { codes: preview.retired.join(", ") }));
        const applyButton = el("button", { type: "button", id: "preview-apply" }, t("Apply"));
        const cancelButton = el("button", { type: "button", id: "preview-cancel" }, t("Cancel"));
        box.replaceChildren(
          el("h3", {}, t("{title}: preview", { title })),
          el("ul", {}, preview.created.map((c, n) => el("li", {}, (split ? (n + 1) + " · " : "") + c.code + ": " +
            m2(c.area_m2)))),
          table,
          el("p", {}, t("{moved} open incident(s) would move to the new grids; closed ones stay.",
            { moved: preview.incidents_moved })),
          applyButton, cancelButton,
        );
        box.hidden = false;
        box.scrollIntoView({ block: "start" });
        map.fitBounds(previewLayer.getBounds(), { padding: [40, 40] });
        notice(t("Nothing is written yet: check who goes where, then apply."));
        cancelButton.addEventListener("click", () => { previewLayer.clearLayers(); box.hidden = true; notice(""); });
        applyButton.addEventListener("click", async () => {
          const boxes = Array.from(box.querySelectorAll("input[data-person]"));
          let plan = null;
          if (boxes.some((b) => !b.checked)) {
            plan = {};
            for (const c of preview.created) plan[c.code] = [];
            for (const b of boxes) if (b.checked) plan[b.dataset.grid].push(Number(b.dataset.person));
          }
          applyButton.disabled = true;
          try { await apply(plan); } catch (err) { applyButton.disabled = false; notice(err.message, "error"); }
        });
      }
      // Editing a boundary by its corners: a handle on each corner of the selected grid (not on the points that
      // only densify its edges). Dragging one moves that corner in every grid whose boundary passes through it
      // (neighbours, the parent and its neighbours) with the edges ending there, as one change; it snaps to the
      // corners of the grids around. The last edit can be undone.
      const cancel = document.getElementById("reshape-cancel");
      const handles = L.layerGroup().addTo(map);
      document.getElementById("reshape").addEventListener("click", async () => {
        if (selected.size !== 1) { notice(t("Click one cell to edit its boundary."), "error"); return; }
        const feature = Array.from(selected.values())[0];
        const code = feature.properties.code;
        let found;
        try { found = await api("GET", "/api/grids/" + encodeURIComponent(code) + "/corners"); } catch (err) { notice(err.message, "error"); return; }
        handles.clearLayers();
        editing = { code };
        const others = [];  // the points of the grids shown, to snap to ...
        const edges = [];   // ... and their edges, when no point is near
        for (const info of layers) {
          if (info.kind !== "geojson" || !map.hasLayer(info.layer)) continue;
          info.layer.eachLayer((layer) => {
            const rings = layer.getLatLngs().flat(2).filter((r) => Array.isArray(r));
            for (const ring of (rings.length ? rings : [layer.getLatLngs().flat(3)])) {
              for (const [n, p] of ring.entries()) { others.push(p); edges.push([p, ring[(n + 1) % ring.length]]); }
            }
          });
        }
        // Corners (drag to move, right-click to take away) and, halfway between them, new corners to drag out.
        const handle = (lon, lat, adding) => {
          const marker = L.marker([lat, lon], { draggable: true, keyboard: false,
            title: adding ? t("Drag to add a corner here") : t("Drag to move this corner; right-click to take it away"),
            icon: L.divIcon({ className: "corner-handle" + (adding ? " add" : ""), iconSize: adding ? [10, 10] : [14, 14] }) });
          marker.on("drag", (e) => {
            const here = map.latLngToContainerPoint(e.latlng);
            let best = null, bestPx = 9;
            for (const p of others) {
              if (Math.abs(p.lat - lat) < 1e-9 && Math.abs(p.lng - lon) < 1e-9) continue;
              const px = here.distanceTo(map.latLngToContainerPoint(p));
              if (px < bestPx) { best = p; bestPx = px; }
            }
            if (!best) {  // onto an edge within 6 px
              let bestEdgePx = 6;
              for (const [a, b] of edges) {
                const pa = map.latLngToContainerPoint(a), pb = map.latLngToContainerPoint(b);
                const on = L.LineUtil.closestPointOnSegment(here, pa, pb);
                const px = here.distanceTo(on);
                if (px < bestEdgePx) { best = map.containerPointToLatLng(on); bestEdgePx = px; }
              }
            }
            if (best) marker.setLatLng(best);
          });
          marker.on("dragend", async () => {
            const to = marker.getLatLng();
            notice(t("Moving the corner in every grid that has it…"));
            try {
              const result = await api("POST", "/api/grids/corner", { from: [lon, lat], to: [Number(to.lng.toFixed(8)), Number(to.lat.toFixed(8))] });
              sessionStorage.setItem("geogrid-undo", JSON.stringify(result.versions));
              done(t("Moved the corner of {codes}; {moved} open incident(s) moved to another cell.",
                { codes: Object.keys(result.versions).join(", "), moved: result.incidents_moved }));
            } catch (err) {
              marker.setLatLng([lat, lon]);
              notice(err.message, "error");
            }
          });
          if (!adding) {
            marker.on("contextmenu", async (e) => {
              L.DomEvent.preventDefault(e.originalEvent);
              try {
                const result = await api("POST", "/api/grids/" + encodeURIComponent(code) + "/corner/remove", { at: [lon, lat] });
                sessionStorage.setItem("geogrid-undo", JSON.stringify(result.versions));
                done(t("Took the corner away from {codes}.", { codes: Object.keys(result.versions).join(", ") }));
              } catch (err) { notice(err.message, "error"); }
            });
          }
          handles.addLayer(marker);
        };
        for (const [lon, lat] of found.midpoints || []) handle(lon, lat, true);
        for (const [lon, lat] of found.corners) handle(lon, lat, false);
        highlight.clearLayers();
        cancel.hidden = false;
        document.body.dataset.corners = String(found.corners.length);
        notice(t("Drag a corner: the grids that share it, the parent's too, move with it. {n} corners.", { n: found.corners.length }));
      });
      cancel.addEventListener("click", stopEditing);
      function stopEditing() {
        handles.clearLayers();
        editing = null;
        cancel.hidden = true;
        notice("");
      }
      // A boundary file, previewed before anything is written: new and changed grids on the map, the ground each
      // changed one moves, the tiling check of the result; then apply or cancel.
      document.getElementById("import-preview").addEventListener("click", async () => {
        const file = document.getElementById("import-file").files[0];
        if (!file) { notice(t("Choose the file first."), "error"); return; }
        const ext = (file.name.split(".").pop() || "").toLowerCase();
        const format = { geojson: "geojson", json: "geojson", zip: "zip", gpkg: "gpkg" }[ext];
        if (!format) { notice(t("A boundary file is GeoJSON, a zipped Shapefile or a GeoPackage."), "error"); return; }
        const query = new URLSearchParams({ format, level: document.getElementById("import-level").value });
        for (const [name, id] of [["code_field", "import-code-field"], ["name_field", "import-name-field"]]) {
          const value = document.getElementById(id).value.trim();
          if (value) query.set(name, value);
        }
        if (document.getElementById("import-make-valid").checked) query.set("make_valid", "true");
        if (document.getElementById("import-snap").checked) query.set("snap_to_parent", "true");
        query.set("skip_refused", "true");  // what cannot be imported is listed with its reason, the rest goes in
        notice(t("Reading {name}…", { name: file.name }));
        let preview;
        try { preview = await api("POST", "/api/grids/import?" + query + "&dry_run=true", file); } catch (err) { notice(err.message, "error"); return; }
        showImport(file, query, preview);
      });

      // Why a feature was left out, in the page's words (the database's reasons for an invalid shape, translated).
      const GEOS = { "Self-intersection": t("it crosses itself"), "Ring Self-intersection": t("a ring touches itself"),
        "Too few points": t("too few points"), "Hole lies outside shell": t("a hole lies outside it"),
        "Nested holes": t("holes inside holes"), "Interior is disconnected": t("its inside is cut in two"),
        "Nested shells": t("one part lies inside another"), "Duplicate Rings": t("a ring appears twice"),
        "Invalid Coordinate": t("a coordinate is not a number") };
      function refusal(r) {
        const name = r.code ? t("feature {n} ({code})", { n: r.feature, code: r.code }) : t("feature {n}", { n: r.feature });
        if (r.kind === "outside") return el("li", {}, t("{name}: outside every grid of the level above", { name }));
        const where = r.location ? " " + t("at {lon}, {lat}", { lon: r.location[0].toFixed(6), lat: r.location[1].toFixed(6) }) : "";
        return el("li", {}, t("{name}: not a valid shape, {why}", { name, why: GEOS[r.detail] || r.detail }) + where +
          " " + t("(tick “Repair invalid shapes” to repair it)"));
      }

      function showImport(file, query, preview) {
        const box = document.getElementById("edit-preview");
        previewLayer.clearLayers();
        const colours = { new: "#2ca02c", changed: "#ff7f0e" };
        for (const f of preview.preview.features) {
          const shape = L.geoJSON(f, { style: { color: colours[f.properties.status], weight: 3, fillOpacity: 0.25 } });
          shape.bindTooltip(el("span", {}, f.properties.code + " " + (f.properties.name || "")), { direction: "center" });
          previewLayer.addLayer(shape);
        }
        const problems = L.geoJSON({ type: "FeatureCollection", features: preview.problem_features },
          { style: { color: "#d00000", weight: 2, fillColor: "#ff4d4d", fillOpacity: 0.55 } });
        previewLayer.addLayer(problems);
        const applyButton = el("button", { type: "button", id: "preview-apply" }, t("Apply"));
        const cancelButton = el("button", { type: "button", id: "preview-cancel" }, t("Cancel"));
        box.replaceChildren(
          el("h3", {}, t("{name}: preview", { name: file.name })),
          el("p", {}, t("{features} features: {new} new, {changed} changed, {same} unchanged; {moved} open incident(s) would move.",
            { features: preview.features, new: preview.created.length, changed: preview.changed.length,
              same: preview.unchanged.length, moved: preview.incidents_moved })),
          el("ul", { class: "import-list" },
            ...preview.created.map((code) => el("li", { class: "new" }, t("new: {code}", { code }))),
            ...preview.changed.map((code) => el("li", { class: "changed" }, t("changed: {code}, {area} of ground moved",
              { code, area: m2(preview.moved_m2[code] || 0) })))),
          ...preview.repaired.map((line) => el("p", { class: "hint" }, line)),
          ...(preview.refused.length ? [el("div", { class: "refused" },
            el("p", { class: "error" }, t("{n} feature(s) refused, left out:", { n: preview.refused.length })),
            el("ul", {}, ...preview.refused.map(refusal)))] : []),
          preview.problems.length
            ? el("div", { class: "problems" }, el("p", { class: "error" }, t("After it the tiling check finds {n} problem(s):", { n: preview.problems.length })),
              el("ul", {}, ...preview.problem_features.map((f) => el("li", {}, t("{kind} in {parent}: {area}, {width} wide",
                { kind: label("problem", f.properties.kind) + " (" + f.properties.codes.join(", ") + ")",
                  parent: f.properties.parent_code, area: m2(f.properties.area_m2), width: f.properties.width_m + " m" })))))
            : el("p", {}, t("After it, the grids still tile their parents.")),
          applyButton, cancelButton);
        box.hidden = false;
        box.scrollIntoView({ block: "start" });
        if (previewLayer.getLayers().length) map.fitBounds(previewLayer.getBounds(), { padding: [40, 40] });
        notice(t("Nothing is written yet: look at the preview, then apply."));
        cancelButton.addEventListener("click", () => { previewLayer.clearLayers(); box.hidden = true; notice(""); });
        applyButton.addEventListener("click", async () => {
          applyButton.disabled = true;
          try {
            const result = await api("POST", "/api/grids/import?" + query, file);
            done(t("Imported {name}: {new} new, {changed} changed, {same} unchanged.", { name: file.name,
              new: result.created.length, changed: result.changed.length, same: result.unchanged.length }));
          } catch (err) { applyButton.disabled = false; notice(err.message, "error"); }
        });
      }

      // Generating the cells of the selected grid: a shape and a size, previewed (the cells numbered on the map),
      // then applied or cancelled.
      const shapeChoice = document.getElementById("generate-shape");
      shapeChoice.addEventListener("change", () => {
        const byCount = ["voronoi", "balanced"].includes(shapeChoice.value);
        for (const node of document.querySelectorAll("#generate-box .by-area")) node.hidden = byCount;
        for (const node of document.querySelectorAll("#generate-box .by-count")) node.hidden = !byCount;
      });
      document.getElementById("generate-preview").addEventListener("click", async () => {
        if (selected.size !== 1) { notice(t("Click the grid to fill with cells first."), "error"); return; }
        const code = Array.from(selected.keys())[0];
        const shape = shapeChoice.value;
        const body = shape === "balanced" ? {} : { shape };
        if (["voronoi", "balanced"].includes(shape)) {
          body.balanced = Number(document.getElementById("generate-count").value);
          if (!(body.balanced >= 1)) { notice(t("Say how many cells."), "error"); return; }
          const file = document.getElementById("generate-weights").files[0];
          if (file) {
            try { body.weights = JSON.parse(await file.text()); } catch (err) { notice(t("{name} is not GeoJSON: {reason}", { name: file.name, reason: err.message }), "error"); return; }
            const field = document.getElementById("generate-weight-field").value.trim();
            if (field) body.weight_field = field;
          }
        } else {
          body.area_m2 = Number(document.getElementById("generate-area").value);
          if (!(body.area_m2 > 0)) { notice(t("Say the area of a cell."), "error"); return; }
        }
        const url = "/api/grids/" + encodeURIComponent(code) + "/generate";
        notice(t("Working out the cells of {code}…", { code }));
        try {
          const preview = await api("POST", url, { ...body, dry_run: true });
          showPreview(t("Cells of {code}", { code }), preview, true, async () => {
            const result = await api("POST", url, body);
            done(t("Made {n} cells in {code}.", { n: result.created.length, code }) + " " + outcome(result));
          });
        } catch (err) { notice(err.message, "error"); }
      });

      // Undo the last edit made on this page (new versions with the shapes before).
      const undo = document.getElementById("undo");
      const last = sessionStorage.getItem("geogrid-undo");
      if (last) {
        undo.hidden = false;
        undo.addEventListener("click", async () => {
          try {
            const result = await api("POST", "/api/grids/restore", { versions: JSON.parse(last) });
            sessionStorage.removeItem("geogrid-undo");
            done(t("Undone: {codes} have their boundaries from before.", { codes: Object.keys(result.versions).join(", ") }));
          } catch (err) { notice(err.message, "error"); }
        });
      }
    }

    // After an edit the page loads again where it was (centre and zoom), saying what the edit did.
    function done(message) {
      sessionStorage.setItem("geogrid-notice", message);
      const c = map.getCenter();
      sessionStorage.setItem("geogrid-view", JSON.stringify([c.lat, c.lng, map.getZoom(), document.getElementById("level").value]));
      window.location.reload();
    }
    const carried = sessionStorage.getItem("geogrid-notice");
    if (carried) { notice(carried); sessionStorage.removeItem("geogrid-notice"); }
    const view = sessionStorage.getItem("geogrid-view");
    if (view) {
      sessionStorage.removeItem("geogrid-view");
      const [lat, lng, zoom, level] = JSON.parse(view);
      map.setView([lat, lng], zoom, { animate: false });
      const chooser = document.getElementById("level");
      if (level && [...chooser.options].some((o) => o.value === level)) {
        chooser.value = level;
        chooser.dispatchEvent(new Event("change"));
      }
    }
    placeLabels();

    // Ready (first render) once the visible vector-tile layers have drawn; the tiling
    // check goes on in the background and says when it is done (data-topology).
    Promise.all(layers.filter((i) => i.kind === "tiles").map((i) => new Promise((resolve) => {
      if (!map.hasLayer(i.layer) || !i.layer.isLoading()) resolve();
      else i.layer.once("load", resolve);
    }))).then(ready);
    loadTopology();
  }

  // -- command center ----------------------------------------------------------------

  function incidentsPage() {
    const cluster = window[config.cluster];
    // The clusters keep each marker's projected position: on a basemap with another datum, cluster afresh.
    map.on("geogrid:crs", () => {
      const markers = cluster.getLayers();
      cluster.clearLayers();
      cluster.addLayers(markers);
    });
    // A cluster takes the colour of its worst case and says how many are overdue: none hides in a crowd.
    cluster.options.iconCreateFunction = (group) => {
      let overdue = 0;
      let open = 0;
      for (const marker of group.getAllChildMarkers()) {
        if (marker.options.overdue) overdue += 1;
        else if (marker.options.open) open += 1;
      }
      const kind = overdue ? "overdue" : open ? "open" : "done";
      const count = group.getChildCount();
      const size = count < 100 ? 36 : count < 1000 ? 42 : 48;
      return L.divIcon({
        html: "<div><span>" + count + "</span></div>" + (overdue ? "<b class=\"due\">" + overdue + "</b>" : ""),
        className: "marker-cluster case-cluster case-cluster-" + kind, iconSize: L.point(size, size),
      });
    };
    const heat = window[config.heat];
    const picked = window[config.picked];
    const closedStates = new Set(["closed", "rejected"]);
    let points = [];
    let picking = null;  // a function waiting for the next click on the map (registering a case)

    const legend = document.getElementById("legend");
    for (const [status, colour] of Object.entries(config.colours)) {
      legend.append(el("li", {}, el("span", { class: "swatch", style: "background:" + colour }), label("status", status)));
    }
    legend.append(el("li", {}, el("span", { class: "swatch", style: "background:#fff;border:3px solid #000" }), t("overdue")));
    for (const [kind, text] of [["overdue", t("group with overdue cases (their number in red)")],
      ["open", t("group of open cases")], ["done", t("group of closed cases")]]) {
      legend.append(el("li", {}, el("span", { class: "swatch round case-cluster-" + kind }), text));
    }

    // -- tabs: the board, registering a case, the map's own tools
    panelTabs();

    // The two-level category picker: a major class, then (optionally) one of its categories.
    function picker(major, minor, optional) {
      major.addEventListener("change", () => {
        for (const option of minor.options) {
          option.hidden = Boolean(option.value) && (optional ? Boolean(major.value) : true) && option.dataset.class !== major.value;
        }
        if (minor.selectedOptions[0] && minor.selectedOptions[0].hidden) minor.value = "";
      });
      minor.addEventListener("change", () => {
        const chosen = minor.selectedOptions[0];
        if (chosen && chosen.dataset.class) major.value = chosen.dataset.class;
      });
    }
    const majorPick = document.getElementById("f-class");
    const minorPick = document.getElementById("f-category");
    picker(majorPick, minorPick, true);

    const departments = document.getElementById("f-department");
    const persons = document.getElementById("f-person");
    function offer(select, values) {
      const known = new Set([...select.options].map((o) => o.value));
      for (const [value, text] of values) if (!known.has(String(value))) select.append(el("option", { value }, text));
    }
    offer(departments, config.departments.map((d) => [d, d]));

    function query() {
      const form = new FormData(document.getElementById("filters"));
      const params = new URLSearchParams();
      for (const [key, value] of form.entries()) if (value) params.set(key, value);
      params.delete("person");  // the board's filter: the map's incidents have no handler filter
      // A class alone filters by all of its categories (the API takes a 2-digit class code).
      const category = minorPick.value || majorPick.value;
      if (category) params.set("category", category);
      return params;
    }

    // Many incidents: the points are vector tiles filtered by the same query; the
    // heatmap takes the newest 20,000 of them.
    const tiles = config.tiles ? window[config.tiles] : null;
    if (tiles) map.removeLayer(cluster);
    map.on("click", async (e) => {
      if (picking) { picking(e.latlng); return; }
      if (!tiles || !map.hasLayer(tiles)) return;
      const params = query();
      params.set("bbox", bboxAround(e.latlng, 8));
      params.set("limit", "1");
      try {
        const fc = await api("GET", "/api/incidents?" + params.toString());
        if (fc.features.length) openCase(fc.features[0].id);
      } catch (err) { notice(err.message, "error"); }
    });

    async function load() {
      const params = query();
      if (tiles) {
        tiles.setUrl("/tiles/incidents/{z}/{x}/{y}.pbf?" + params.toString() + "&datum={datum}");
      }
      params.set("limit", "1000");
      const features = [];
      let matched = 0;
      try {
        for (let offset = 0; offset !== null && features.length < 20000;) {
          params.set("offset", String(offset));
          const page = await api("GET", "/api/incidents?" + params.toString());
          features.push(...page.features);
          matched = page.numberMatched;
          offset = page.next_offset;
        }
      } catch (err) { notice(err.message, "error"); return; }
      cluster.clearLayers();
      points = [];
      if (tiles) {
        points = features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0], 1]);
        heat.setLatLngs(points);
        document.getElementById("count").textContent = t("{matched} matching incidents (map tiles; heatmap of the newest {shown}).",
          { matched: matched.toLocaleString(), shown: features.length.toLocaleString() });
        document.body.dataset.incidents = String(matched);
        return;
      }
      const markers = features.map((f) => {
        const [lon, lat] = f.geometry.coordinates;
        const p = f.properties;
        points.push([lat, lon, 1]);
        const marker = L.circleMarker([lat, lon], {
          radius: 7, fillColor: config.colours[p.status] || "#333", fillOpacity: 0.9,
          color: p.overdue ? "#000" : "#fff", weight: p.overdue ? 3 : 1, className: "incident incident-" + f.id,
          overdue: Boolean(p.overdue), open: !closedStates.has(p.status),
        });
        marker.bindTooltip(el("span", {}, "#" + f.id + " " + label("category", p.category) + " · " + label("status", p.status) +
          (p.overdue ? " · " + t("overdue") : "")));
        marker.on("click", () => openCase(f.id));
        return marker;
      });
      cluster.addLayers(markers);
      heat.setLatLngs(points);
      document.getElementById("count").textContent = t("{shown} of {matched} matching incidents shown.",
        { shown: features.length.toLocaleString(), matched: matched.toLocaleString() });
      document.body.dataset.incidents = String(features.length);
    }

    // -- the case board: queues by stage, a queue's cases overdue first, then by time left
    const queuesList = document.getElementById("queues");
    const casesList = document.getElementById("cases");
    let queue = null;

    // "48 h" in the page's language.

    // "2 d 3 h", "5 h 10 min" or "40 min" in the page's language.
    function span(seconds) {
      const s = Math.abs(seconds);
      const d = Math.floor(s / 86400);
      const h = Math.floor((s % 86400) / 3600);
      const m = Math.floor((s % 3600) / 60);
      if (d) return t("{d} d {h} h", { d, h });
      if (h) return t("{h} h {m} min", { h, m });
      return t("{m} min", { m });
    }
    function timeLeft(seconds) {
      if (seconds === null || seconds === undefined) return "";
      return seconds < 0 ? t("{time} overdue", { time: span(seconds) }) : t("{time} left", { time: span(seconds) });
    }

    async function loadBoard(which) {
      const params = new URLSearchParams();
      const filters = new FormData(document.getElementById("filters"));
      for (const key of ["grid", "department", "person"]) if (filters.get(key)) params.set(key, filters.get(key));
      const category = minorPick.value || majorPick.value;
      if (category) params.set("category", category);
      if (which) params.set("queue", which);
      let board;
      try { board = await api("GET", "/api/cases/board?" + params.toString()); } catch (err) { notice(err.message, "error"); return; }
      queue = board.queue;
      offer(departments, board.departments.map((d) => [d, d]));
      offer(persons, board.handlers.map((p) => [p.id, p.name + (p.phone ? " " + p.phone : "")]));
      queuesList.replaceChildren(...board.queues.map((q) => el("li", {},
        el("button", { type: "button", "data-queue": q.queue, "aria-pressed": String(q.queue === queue),
          onclick: () => loadBoard(q.queue) },
        el("span", { class: "name" }, label("queue", q.queue)), el("b", {}, q.count.toLocaleString()),
        q.overdue ? el("span", { class: "due" }, t("{n} overdue", { n: q.overdue.toLocaleString() })) : null))));
      casesList.replaceChildren(...board.cases.map((c) => el("li", { class: c.overdue ? "overdue" : "" },
        el("button", { type: "button", "data-id": c.id, onclick: () => openCase(c.id) },
          el("span", { class: "line" }, el("b", {}, "#" + c.id), " " + label("category", c.category)),
          el("span", { class: "line hint" }, (c.grid_name || c.grid_code || t("no cell")) +
            (c.department ? " · " + c.department : "") + (c.handler ? " · " + c.handler : "")),
          el("span", { class: "left" + (c.overdue ? " late" : "") },
            c.status === "pending" ? t("review on {day}", { day: when(c.review_at).slice(0, 10) })
              : c.status === "postponed" ? t("postponed until {day}", { day: when(c.deadline).slice(0, 10) })
                : timeLeft(c.seconds_left))))));
      if (!board.cases.length) casesList.append(el("li", { class: "hint" }, t("No cases wait here.")));
      document.body.dataset.board = queue;
    }

    // -- the case beside the map: its cell, people, clock, history and the steps the role may take
    const caseBox = document.getElementById("case");
    const caseBody = document.getElementById("case-body");
    let current = null;

    function closeCase() {
      caseBox.hidden = true;
      current = null;
      picked.clearLayers();
      map.invalidateSize();
    }
    document.getElementById("case-close").addEventListener("click", closeCase);

    // The words of each step's button, and what it asks for.
    const STEPS = {
      accepted: { text: t("Accept"), fields: [] },
      rejected: { text: t("Do not accept"), fields: ["reason"] },
      dispatched: { text: t("Dispatch"), fields: ["deadline", "department", "person", "note"] },
      handled_on_spot: { text: t("Handled on the spot"), fields: ["note"] },
      escalated: { text: t("Escalate"), fields: ["department", "note"] },
      in_progress: { text: t("Start handling"), fields: [] },
      resolved: { text: t("Report back"), fields: ["note"] },
      closed: { text: t("Check passed: close"), fields: ["note"] },
      rework: { text: t("Check failed: rework"), fields: ["reason"] },
      pending: { text: t("Put on the pending list"), fields: ["reason", "review_at"] },
    };

    function field(name, inc) {
      const id = "a-" + name;
      if (name === "deadline") {
        // The deadline is the category's, at the case's level (CJ/T 315): said here, not typed.
        if (!inc.dispatch_hours) return [];
        const due = new Date(Date.now() + inc.dispatch_hours * 3600 * 1000).toISOString();
        return [el("p", { class: "hint", id }, t("Deadline: {hours} for {category}, until {when}.",
          { hours: hours(inc.dispatch_hours), category: label("category", inc.category), when: when(due) }))];
      }
      if (name === "department") {
        const select = el("select", { id, name }, el("option", { value: "" }, t("none")),
          config.departments.map((d) => el("option", { value: d }, d)));
        if (inc.department) { offer(select, [[inc.department, inc.department]]); select.value = inc.department; }
        return [el("label", { for: id }, t("Department")), select];
      }
      if (name === "person") {
        const seen = new Set();
        const people = (inc.responsible || []).filter((p) => !seen.has(p.id) && seen.add(p.id));
        const select = el("select", { id, name }, el("option", { value: "" }, t("none")),
          people.map((p) => el("option", { value: p.id }, p.name + " · " + label("duty", p.duty) + (p.phone ? " · " + p.phone : ""))));
        return [el("label", { for: id }, t("Person")), select];
      }
      if (name === "review_at" || name === "until") {
        return [el("label", { for: id }, name === "until" ? t("Resume on (day)") : t("Review on (day)")),
          dayField(el("input", { type: "text", id, name, class: "day", required: true, placeholder: "2026-12-31",
            pattern: "\\d{4}-\\d{2}-\\d{2}" }))];
      }
      if (name === "hours") {
        return [el("label", { for: id }, t("Hours more")), el("input", { type: "number", id, name, min: "1", max: "720", value: "24" })];
      }
      const required = name === "reason";
      return [el("label", { for: id }, required ? t("Reason") : t("Note")),
        el("textarea", { id, name, rows: "2", required })];
    }

    // A small form under the buttons: the fields the step asks for, then confirm.
    function stepForm(title, fields, inc, send) {
      const form = el("form", { class: "step-form", id: "step-form" }, el("h4", {}, title),
        ...fields.map((name) => field(name, inc)),
        el("div", { class: "row" }, el("button", { type: "submit", class: "primary" }, t("Confirm")),
          el("button", { type: "button", onclick: () => form.remove() }, t("Cancel"))));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const data = Object.fromEntries(new FormData(form).entries());
        await act(inc, () => send(data), title);
      });
      document.getElementById("step-form")?.remove();
      caseBody.querySelector(".actions").after(form);
      form.querySelector("input, select, textarea")?.focus();
      return form;
    }

    async function act(inc, call, title) {
      try {
        await call();
      } catch (err) { notice(err.message, "error"); return; }
      notice(t("Done: {step} (#{id}).", { step: title, id: inc.id }));
      await openCase(inc.id, false);
      loadBoard(queue);
      load();
    }

    function transitionButton(inc, to) {
      const step = STEPS[to];
      if (!step) return null;
      const send = (data) => {
        const body = { to };
        if (data.reason || data.note) body.note = data.reason || data.note;
        if (data.department) body.department = data.department;
        if (data.person) body.person_id = Number(data.person);
        if (data.review_at) body.review_at = data.review_at;
        return api("POST", "/api/incidents/" + inc.id + "/transition", body);
      };
      return el("button", { type: "button", "data-step": to, class: to === "rework" || to === "rejected" ? "warn" : "",
        onclick: () => step.fields.length ? stepForm(step.text, step.fields, inc, send) : act(inc, () => send({}), step.text) },
      step.text);
    }

    function actions(inc) {
      const buttons = [];
      if (config.can_handle) {
        for (const to of inc.next || []) buttons.push(transitionButton(inc, to));
        const handling = ["dispatched", "in_progress", "rework", "escalated"].includes(inc.status);
        if (handling && !inc.open_delay) {
          buttons.push(el("button", { type: "button", "data-step": "extend", onclick: () => stepForm(t("Ask for more time"),
            ["hours", "reason"], inc, (d) => api("POST", "/api/incidents/" + inc.id + "/delay",
              { kind: "extend", hours: Number(d.hours), reason: d.reason })) }, t("Ask for more time")));
          buttons.push(el("button", { type: "button", "data-step": "postpone", onclick: () => stepForm(t("Ask to postpone"),
            ["until", "reason"], inc, (d) => api("POST", "/api/incidents/" + inc.id + "/delay",
              { kind: "postpone", until: d.until, reason: d.reason })) }, t("Ask to postpone")));
        }
        if (inc.open_delay) {
          const decide = (approve) => stepForm(approve ? t("Approve the request") : t("Refuse the request"), ["note"], inc,
            (d) => api("POST", "/api/incidents/" + inc.id + "/delay/decision", { approve, note: d.note || "" }));
          buttons.push(el("button", { type: "button", "data-step": "approve", onclick: () => decide(true) }, t("Approve the request")));
          buttons.push(el("button", { type: "button", "data-step": "refuse", class: "warn", onclick: () => decide(false) },
            t("Refuse the request")));
        }
        if (inc.awaiting_visit) {
          buttons.push(el("button", { type: "button", "data-step": "visit", onclick: () => {
            const form = stepForm(t("Return visit"), ["note"], inc, (d) => api("POST", "/api/incidents/" + inc.id + "/visit",
              { method: d.method, satisfied: d.satisfied === "yes", note: d.note || "" }));
            form.querySelector("h4").after(
              el("label", { for: "a-method" }, t("How")),
              el("select", { id: "a-method", name: "method" }, el("option", { value: "phone" }, label("step", "phone")),
                el("option", { value: "visit" }, label("step", "visit"))),
              el("label", { for: "a-satisfied" }, t("The resident is")),
              el("select", { id: "a-satisfied", name: "satisfied" }, el("option", { value: "yes" }, t("satisfied")),
                el("option", { value: "no" }, t("not satisfied: reopen"))));
          } }, t("Return visit")));
        }
      }
      if (config.can_supervise && inc.overdue) {
        buttons.push(el("button", { type: "button", "data-step": "supervise", class: "warn",
          onclick: () => stepForm(t("Supervision notice"), ["note"], inc,
            (d) => api("POST", "/api/incidents/" + inc.id + "/supervise", { note: d.note || "" })) }, t("Supervision notice")));
      }
      return el("div", { class: "actions" }, buttons.filter(Boolean));
    }

    function person(p, extra) {
      return el("li", {}, p.name + (extra ? " · " + extra : "") + " ",
        p.phone ? el("a", { href: "tel:" + p.phone, class: "phone" }, p.phone) : el("span", { class: "hint" }, t("no phone")));
    }

    async function openCase(id, move = true) {
      let inc;
      try { inc = await api("GET", "/api/incidents/" + encodeURIComponent(id)); } catch (err) { notice(err.message, "error"); return; }
      current = inc;
      const wasHidden = caseBox.hidden;
      caseBox.hidden = false;
      if (wasHidden) map.invalidateSize();
      picked.clearLayers();
      if (inc.cell) {
        const cell = L.geoJSON(inc.cell.geometry, { style: { color: "#d62728", weight: 4, fillOpacity: 0.15 } });
        picked.addLayer(cell);
        if (move) map.fitBounds(cell.getBounds(), { maxZoom: 17 });
      } else if (move) {
        map.setView([inc.lat, inc.lon], 16);
      }
      picked.addLayer(L.circleMarker([inc.lat, inc.lon], { radius: 9, color: "#d62728", weight: 3, fillOpacity: 0 }));
      const seconds = inc.deadline ? (new Date(inc.deadline) - Date.now()) / 1000 : null;
      const clockRunning = !["resolved", "handled_on_spot", "closed", "rejected", "pending", "postponed"].includes(inc.status);
      const rows = [
        [t("category"), label("category", inc.category)],
        [t("where"), inc.cell ? inc.cell.code + " " + (inc.cell.name || "") : t("unassigned ({how})", { how: label("assignment", inc.assignment) })],
        [t("parents"), (inc.parents || []).map((x) => x.name || x.code).join(" › ")],
        [t("reported"), when(inc.reported_at) + " · " + label("source", inc.source)],
        [t("deadline"), inc.deadline ? when(inc.deadline) + (clockRunning ? " · " + timeLeft(seconds) : "") : ""],
        [t("pending until"), inc.status === "pending" ? when(inc.review_at).slice(0, 10) : ""],
        [t("description"), inc.description],
        [t("reporter"), inc.reporter],
        [t("department"), inc.department],
      ];
      const dl = el("dl", {});
      for (const [key, value] of rows) if (value) dl.append(el("dt", {}, key), el("dd", {}, value));
      const people = el("ul", { class: "people" });
      if (inc.handler) people.append(person(inc.handler, t("handler")));
      for (const p of inc.responsible || []) people.append(person(p, label("duty", p.duty) + (p.grid_code ? " " + p.grid_code : "")));
      const request = inc.open_delay ? el("p", { class: "request" }, t("Open request: {kind}", { kind: label("step", inc.open_delay.kind) }) +
        (inc.open_delay.hours ? " " + hours(inc.open_delay.hours) : "") + (inc.open_delay.until ? " " + when(inc.open_delay.until).slice(0, 10) : "") +
        " — " + (inc.open_delay.reason || "") + " (" + inc.open_delay.by + ", " + when(inc.open_delay.at) + ")") : null;
      caseBody.replaceChildren(
        el("h2", {}, t("Case #{id}", { id: inc.id })),
        el("p", { class: "state" + (inc.overdue ? " late" : "") }, el("span", { class: "badge", style: "background:" + (config.colours[inc.status] || "#333") }),
          label("status", inc.status) + (inc.overdue ? " · " + t("OVERDUE") : "") + (inc.awaiting_visit ? " · " + t("return visit due") : "")),
        ...(request ? [request] : []), actions(inc), dl,
        ...((inc.photos || []).length ? [el("h3", {}, t("Photos ({n})", { n: inc.photos.length })), photoStrip(inc.photos)] : []),
        el("h3", {}, t("People")), people,
        el("h3", {}, t("History")), caseHistory(inc),
      );
      for (const p of inc.photos || []) {
        if (p.lon !== null && p.lon !== undefined) {
          picked.addLayer(L.circleMarker([p.lat, p.lon], { radius: 5, color: "#1f4e79", weight: 2, fillColor: "#fff", fillOpacity: 1 })
            .bindTooltip(t("Photo {id}", { id: p.id })));
        }
      }
      caseBox.dataset.id = String(inc.id);
      caseBox.dataset.cell = inc.cell ? inc.cell.code : "";
      caseBox.dataset.status = inc.status;
      caseBox.scrollTop = 0;
    }

    // A position as typed ("lon,lat"; "lat,lon" is recognised): the grids that contain it.
    async function findPlace(text) {
      picked.clearLayers();
      try {
        const fc = await api("GET", "/api/grids?point=" + encodeURIComponent(text));
        const [lon, lat] = fc.point;
        picked.addLayer(L.circleMarker([lat, lon], { radius: 9, color: "#1f4e79", weight: 3 }));
        map.setView([lat, lon], 16);
        const rows = [[t("grids here"), fc.features.map((f) => f.properties.code + " " + f.properties.name).join(" › ") || t("none")]];
        if (fc.swapped) rows.push([t("note"), t("read as lat,lon: the position lies in the territory the other way round")]);
        showDetails(lon.toFixed(6) + ", " + lat.toFixed(6), rows);
      } catch (err) { notice(err.message, "error"); }
    }

    // -- registering a case (信息采集): a position typed or clicked, a category from the two-level picker
    const register = document.getElementById("register");
    if (register) {
      const position = document.getElementById("r-position");
      picker(document.getElementById("r-class"), document.getElementById("r-category"), false);
      document.getElementById("r-pick").addEventListener("click", () => {
        notice(t("Click the map where it happened."));
        map.getContainer().classList.add("picking");
        picking = (latlng) => {
          picking = null;
          map.getContainer().classList.remove("picking");
          position.value = latlng.lng.toFixed(6) + "," + latlng.lat.toFixed(6);
          picked.clearLayers();
          picked.addLayer(L.circleMarker(latlng, { radius: 9, color: "#1f4e79", weight: 3 }));
          notice("");
        };
      });
      register.addEventListener("submit", async (e) => {
        e.preventDefault();
        const data = Object.fromEntries(new FormData(register).entries());
        let out;
        try {
          const place = await api("GET", "/api/grids?point=" + encodeURIComponent(data.position.trim()));
          const [lon, lat] = place.point;
          out = await api("POST", "/api/incidents", { lon, lat, category: data.category, source: data.source,
            description: data.description || "", reporter: data.reporter || undefined });
        } catch (err) { notice(err.message, "error"); return; }
        notice(out.grid_code
          ? t("Registered as case #{id} in cell {cell}.", { id: out.id, cell: out.grid_code + (out.grid_name ? " " + out.grid_name : "") })
          : t("Registered as case #{id}; it lies outside every cell.", { id: out.id }), out.grid_code ? "" : "error");
        register.reset();
        await openCase(out.id);
        loadBoard(queue);
        load();
      });
    }

    // "Loading…" while the work runs, unless something else was said meanwhile (an error stays).
    async function loading(work) {
      const text = t("Loading incidents…");
      notice(text);
      try { await work; } finally { if (panel.notice.textContent === text) notice(""); }
    }
    document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); loading(Promise.all([load(), loadBoard()])); });
    document.getElementById("heat-toggle").addEventListener("change", (e) => {
      const layer = tiles || cluster;
      if (e.target.checked) { map.addLayer(heat); map.removeLayer(layer); } else { map.removeLayer(heat); map.addLayer(layer); }
    });
    document.getElementById("search").addEventListener("submit", (e) => {
      e.preventDefault();
      const q = document.getElementById("q").value.trim().replace(/^(#|＃|事件|案件)\s*/, "");
      const coords = /^[-+]?\d+(?:\.\d+)?\s*[,，\s]\s*[-+]?\d+(?:\.\d+)?$/.test(q);
      if (/^\d+$/.test(q)) openCase(q);
      else if (coords) findPlace(q);
      else notice(t("Type an incident number, or a position as lon,lat."), "error");
    });
    map.removeLayer(heat);
    // ?case=42 (a link from the daily judgement or elsewhere) opens that case.
    const asked = new URLSearchParams(location.search).get("case");
    loading(Promise.all([load(), loadBoard()]))
      .then(() => (asked && /^\d+$/.test(asked) ? openCase(asked) : null))
      .finally(ready);
  }

  // -- supervisor ----------------------------------------------------------------------

  function coveragePage() {
    const byFraction = window[config.fraction];
    const byRule = window[config.rule];
    const gaps = config.gaps ? window[config.gaps] : null;
    const legend = document.getElementById("legend");

    function drawLegend(mode) {
      const items = mode === "rule"
        ? Object.entries(config.legend.rule).map(([name, colour]) => [label("rule", name), colour])
        : config.legend.fraction.map(([bound, colour], n, all) => [
          n === 0 ? "0%" : Math.round(all[n - 1][0] * 100) + "–" + Math.min(100, Math.round(bound * 100)) + "%", colour]);
      legend.replaceChildren(...items.map(([name, colour]) =>
        el("li", {}, el("span", { class: "swatch", style: "background:" + colour }), name)));
    }

    function cellDetails(p, people) {
      showDetails(p.code + " " + (p.name || ""), [
        [t("covered"), Math.round(p.fraction * 100) + "%"], [t("visits"), p.visits],
        [t("rule"), p.assigned ? (p.compliant ? t("met") : t("not met")) : t("no patrol duty")],
        ...people.map((x) => [x.person, Math.round(x.fraction * 100) + "%, " + t("{n} visit(s)", { n: x.visits }) +
          (x.repairs ? ", " + t("{n} repaired (补签)", { n: x.repairs }) : "") +
          (x.reasons && x.reasons.length ? ", " + x.reasons.map(reason).join("; ") : "")]),
      ]);
    }

    if (config.kind === "geojson") {
      for (const layer of [byFraction, byRule]) {
        layer.eachLayer((cell) => {
          const p = cell.feature.properties;
          cell.bindTooltip(el("span", {}, p.code + " " + (p.name || "") + " · " + Math.round(p.fraction * 100) + "% · " +
            t("{n} visit(s)", { n: p.visits }) + (p.assigned ? " · " + (p.compliant ? t("compliant") : t("missed")) : "")));
          cell.on("click", () => cellDetails(p, p.people));
        });
      }
    } else {
      // Vector tiles: the tile has the cell's figures; the people come from the coverage API.
      map.on("click", async (e) => {
        if (!map.hasLayer(byFraction) && !map.hasLayer(byRule)) return;
        try {
          const cell = await gridAt(e.latlng, config.levels, null);
          if (!cell) return;
          const report = await api("GET", "/api/coverage?date=" + config.day + "&grid=" +
            encodeURIComponent(cell.properties.code));
          const rows = report.cells;
          const p = {
            code: cell.properties.code, name: cell.properties.name, visits: Math.max(0, ...rows.map((r) => r.visit_count)),
            fraction: Math.max(0, ...rows.map((r) => r.fraction)), assigned: rows.some((r) => r.assigned),
            compliant: rows.some((r) => r.assigned && r.compliant),
          };
          cellDetails(p, rows.map((r) => ({ person: r.person, fraction: r.fraction, visits: r.visit_count,
            reasons: r.reasons, repairs: r.repairs })));
        } catch (err) { notice(err.message, "error"); }
      });
    }
    if (gaps) {
      gaps.eachLayer((gap) => {
        const p = gap.feature.properties;
        gap.bindTooltip(el("span", {}, t("uncovered in {code}: {area}", { code: p.code, area: m2(p.uncovered_m2) })));
      });
      document.getElementById("gaps-toggle").addEventListener("change", (e) => {
        if (e.target.checked) map.addLayer(gaps); else map.removeLayer(gaps);
      });
    }

    // Which colouring is on; tiled cells show from min_zoom on (a hint says so below it).
    let mode = "fraction";
    function syncCells() {
      const tooFar = config.kind === "tiles" && map.getZoom() < config.min_zoom;
      for (const [name, layer] of [["fraction", byFraction], ["rule", byRule]]) {
        const show = mode === name && !tooFar;
        if (show && !map.hasLayer(layer)) map.addLayer(layer);
        if (!show && map.hasLayer(layer)) map.removeLayer(layer);
      }
      if (gaps && map.hasLayer(gaps)) gaps.bringToFront();
      notice(tooFar ? t("Zoom in to level {zoom} to see the cells.", { zoom: config.min_zoom }) : "");
    }
    for (const input of document.querySelectorAll("input[name=mode]")) {
      input.addEventListener("change", () => {
        if (!input.checked) return;
        mode = input.value;
        syncCells();
        drawLegend(mode);
      });
    }
    map.on("zoomend", syncCells);
    syncCells();
    const box = document.getElementById("workers");
    if (!config.workers.length) box.append(el("p", { class: "hint" }, t("No tracks that day.")));
    function describeTracks(layer) {
      layer.eachLayer((track) => {
        const p = track.feature.properties;
        track.bindTooltip(el("span", {}, p.person + " · " + when(p.started).slice(11) + "–" + when(p.ended).slice(11) + " · " +
          t("{n} fixes", { n: p.fixes })));
      });
    }
    // Many workers: their tracks are not in the page, each is fetched the first time it is shown.
    async function tracksOf(worker) {
      if (worker.layer) return worker.layer;
      if (worker.var) {
        worker.layer = window[worker.var];
      } else {
        const query = new URLSearchParams({ date: config.day, person: String(worker.person_id) });
        const grid = new URLSearchParams(location.search).get("grid");
        if (grid) query.set("grid", grid);
        const fc = await api("GET", "/api/coverage/tracks?" + query.toString());
        worker.layer = L.geoJSON(fc, { style: { color: worker.colour, weight: 3, opacity: 0.85 } });
      }
      describeTracks(worker.layer);
      return worker.layer;
    }
    // The view is in the address (?date=&grid=&person=), so that it can be shared.
    const here = new URLSearchParams(location.search);
    here.set("date", config.day);
    function remember(person) {
      if (person) here.set("person", String(person)); else here.delete("person");
      history.replaceState(null, "", location.pathname + "?" + here.toString());
    }
    // Replaying one worker's day: a slider over the day's fixes draws the way up to that moment.
    const replayBox = document.getElementById("replay");
    const slider = document.getElementById("replay-slider");
    const walked = L.polyline([], { color: "#000", weight: 4, opacity: 0.8 });
    const walker = L.circleMarker([0, 0], { radius: 7, color: "#000", weight: 3, fillColor: "#ffde00", fillOpacity: 1 });
    let replayFixes = [];
    let replayStart = 0;
    let playing = null;
    function replayAt(n) {
      const upto = replayFixes.slice(0, n + 1);
      walked.setLatLngs(upto.map(([, lon, lat]) => [lat, lon]));
      const here = upto[upto.length - 1];
      if (!here) return;
      walker.setLatLng([here[2], here[1]]);
      document.getElementById("replay-time").textContent = when(new Date(replayStart + here[0] * 1000).toISOString()).slice(11);
    }
    async function replay(worker) {
      if (!replayBox) return;
      try {
        const body = await api("GET", "/api/coverage/fixes?date=" + config.day + "&person=" + worker.person_id);
        replayFixes = body.fixes;
        replayStart = new Date(body.start).getTime();
      } catch (err) { notice(err.message, "error"); return; }
      replayBox.hidden = !replayFixes.length;
      document.getElementById("replay-who").textContent = worker.person;
      slider.max = String(Math.max(0, replayFixes.length - 1));
      slider.value = slider.max;
      walked.addTo(map);
      walker.addTo(map);
      replayAt(replayFixes.length - 1);
    }
    if (slider) {
      slider.addEventListener("input", () => replayAt(Number(slider.value)));
      document.getElementById("replay-play").addEventListener("click", () => {
        if (playing) { clearInterval(playing); playing = null; return; }
        if (Number(slider.value) >= Number(slider.max)) slider.value = "0";
        const step = Math.max(1, Math.round(replayFixes.length / 200));
        playing = setInterval(() => {
          slider.value = String(Math.min(Number(slider.max), Number(slider.value) + step));
          replayAt(Number(slider.value));
          if (Number(slider.value) >= Number(slider.max)) { clearInterval(playing); playing = null; }
        }, 50);
      });
    }

    // Only one worker's tracks: every other one hidden, the map on theirs.
    async function only(worker) {
      for (const input of box.querySelectorAll("input[type=checkbox]")) {
        const mine = input.dataset.person === String(worker.person_id);
        if (input.checked !== mine) { input.checked = mine; input.dispatchEvent(new Event("change")); }
      }
      remember(worker.person_id);
      replay(worker);
      try {
        const layer = await tracksOf(worker);
        if (layer.getLayers().length) map.fitBounds(layer.getBounds(), { maxZoom: 17 });
      } catch (err) { notice(err.message, "error"); }
    }
    for (const worker of config.workers) {
      if (worker.var) tracksOf(worker);
      const checkbox = el("input", { type: "checkbox", checked: Boolean(worker.var), "data-person": worker.person_id,
        onchange: async (e) => {
          const on = e.target.checked;
          if (!on && here.get("person") === String(worker.person_id)) remember(null);
          let layer;
          try { layer = await tracksOf(worker); } catch (err) { notice(err.message, "error"); return; }
          if (on && e.target.checked) map.addLayer(layer); else map.removeLayer(layer);
        } });
      box.append(el("div", { class: "worker" }, el("label", {}, checkbox,
        el("span", { class: "swatch", style: "background:" + worker.colour }),
        " " + t("{person} ({n} tracks)", { person: worker.person, n: worker.tracks })),
        el("button", { type: "button", class: "only", "data-only": worker.person_id, onclick: () => only(worker) },
          t("only this worker"))));
    }
    // Many workers: the list starts folded, with one click to show or hide every track.
    const fold = document.getElementById("workers-fold");
    if (fold) {
      // Many workers' tracks would hide the cells' colours: then they start hidden.
      fold.open = config.workers.length <= 12;
      const every = (on) => () => {
        for (const input of box.querySelectorAll("input[type=checkbox]")) {
          if (input.checked !== on) { input.checked = on; input.dispatchEvent(new Event("change")); }
        }
      };
      document.getElementById("tracks-all").addEventListener("click", every(true));
      document.getElementById("tracks-none").addEventListener("click", every(false));
    }
    const asked = config.workers.find((w) => String(w.person_id) === here.get("person"));
    if (asked) {
      const fold = document.getElementById("workers-fold");
      if (fold) fold.open = true;
      only(asked);
    } else if (here.get("grid")) {
      // A grid was chosen: the map on it.
      api("GET", "/api/grids/" + encodeURIComponent(here.get("grid")) + "?at=" + config.day)
        .then((g) => map.fitBounds(L.geoJSON(g).getBounds(), { maxZoom: 17 }))
        .catch((err) => notice(err.message, "error"));
    }
    for (const row of document.querySelectorAll("#missed tr[data-code]")) {
      row.addEventListener("click", async () => {
        if (config.kind === "geojson") {
          byFraction.eachLayer((cell) => {
            if (cell.feature.properties.code === row.dataset.code) { map.fitBounds(cell.getBounds(), { maxZoom: 17 }); cell.fire("click"); }
          });
          return;
        }
        try {
          const cell = await api("GET", "/api/grids/" + encodeURIComponent(row.dataset.code));
          map.fitBounds(L.geoJSON(cell).getBounds(), { maxZoom: 18 });
        } catch (err) { notice(err.message, "error"); }
      });
    }
    // -- the workers of the day: what each did, sortable and filtered by name; a click shows only theirs
    panelTabs();
    const workerTable = document.getElementById("worker-table");
    const WORKER_COLUMNS = [["name", t("worker")], ["cell_days", t("cells on duty")], ["met", t("met the rule")],
      ["missed_days", t("missed")], ["km", t("km")], ["hours", t("hours")], ["repairs", t("repairs")]];
    let workerRows = [];
    let workerSort = ["name", false];
    function drawWorkers() {
      const find = document.getElementById("worker-filter").value.trim();
      const [key, down] = workerSort;
      const rows = workerRows.filter((w) => !find || String(w.name).includes(find)).sort((a, b) =>
        (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0) * (down ? -1 : 1));
      workerTable.tBodies[0].replaceChildren(...rows.map((w) => el("tr", { "data-person": w.key,
        onclick: () => { const worker = config.workers.find((x) => x.person_id === w.key); if (worker) only(worker); } },
      WORKER_COLUMNS.map(([k]) => el("td", { class: k === "name" ? "" : "n" }, k === "km" || k === "hours" ? w[k].toFixed(1) : w[k])))));
    }
    workerTable.tHead.replaceChildren(el("tr", {}, WORKER_COLUMNS.map(([key, name]) => el("th", {
      class: key === "name" ? "" : "n", title: t("sort"),
      onclick: () => { workerSort = [key, workerSort[0] === key ? !workerSort[1] : key !== "name"]; drawWorkers(); },
    }, name))));
    document.getElementById("worker-filter").addEventListener("input", drawWorkers);
    async function loadWorkers() {
      try {
        const body = await api("GET", "/api/patrols/indicators?by=person&from=" + config.day + "&to=" + config.day);
        workerRows = body.units.filter((w) => w.cell_days || w.km);
        drawWorkers();
      } catch (err) { notice(err.message, "error"); }
    }

    // -- 补签 asked for: the supervisor approves or refuses each, with a note
    const repairList = document.getElementById("repairs");
    async function loadRepairs() {
      let list;
      try { list = await api("GET", "/api/patrols/repairs"); } catch (err) { notice(err.message, "error"); return; }
      if (!list.length) { repairList.replaceChildren(el("li", { class: "hint" }, t("No repairs asked for."))); return; }
      repairList.replaceChildren(...list.map((r) => {
        const note = el("input", { type: "text", placeholder: t("Note"), "aria-label": t("Note") });
        const decide = (approve) => async () => {
          try {
            await api("POST", "/api/patrols/repairs/" + r.id + "/decision", { approve, note: note.value });
          } catch (err) { notice(err.message, "error"); return; }
          notice(approve ? t("Approved: it counts for the rule of {code} on {day}.", { code: r.grid_code, day: r.day })
            : t("Refused."));
          loadRepairs();
          loadWorkers();
        };
        return el("li", { class: "repair " + r.status, "data-id": r.id },
          el("b", {}, r.person), " · " + r.grid_code + " · " + r.day + " " + when(r.claimed_at).slice(11) + " · ",
          el("span", { class: "status" }, label("repair", r.status)), el("br"), r.reason,
          r.note ? el("span", { class: "hint" }, " — " + r.note) : null,
          (r.photos || []).length ? photoStrip(r.photos.map((id) => ({ id, url: "/api/photos/" + id }))) : null,
          r.status === "pending" ? el("div", { class: "row" }, note,
            el("button", { type: "button", "data-decide": "approve", onclick: decide(true) }, t("Approve")),
            el("button", { type: "button", "data-decide": "refuse", class: "warn", onclick: decide(false) }, t("Refuse"))) : null);
      }));
    }
    if (config.day && document.getElementById("tab-workers")) {
      // The workers' table is a tab away: it is asked for when that tab opens, or a moment after the map is
      // drawn, so that its query (a few hundred workers' day) does not hold up the map's tiles.
      let asked = false;
      const askWorkers = () => { if (!asked) { asked = true; loadWorkers(); } };
      const tab = document.querySelector("#panel [data-tab=workers]");
      tab.addEventListener("click", askWorkers);
      if (tab.getAttribute("aria-selected") === "true") askWorkers(); else setTimeout(askWorkers, 1500);
      loadRepairs();
    }
    drawLegend("fraction");
    ready();
  }

  // Pages with a script of their own (worker.js) register in window.geogrid.pages and get these helpers.
  const kit = { config, map, el, t, label, reason, when, notice, showDetails, api, panelTabs, ready, dayField, photoStrip,
    caseHistory };
  const pages = { grids: gridsPage, incidents: incidentsPage, coverage: coveragePage, ...(window.geogrid.pages || {}) };
  try {
    basemapSwitcher();
    pages[config.page](kit);
  } catch (err) {
    notice(t("The map page failed: {reason}", { reason: err.message }), "error");
    throw err;
  }
})();
