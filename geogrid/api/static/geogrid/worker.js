// A grid worker's page, for a phone: today's cells done and to do, the worker's position, their cases, a new
// report with photos at their position, their 补签 requests, and their track sent as they walk. Everything goes
// through the JSON API; every word reaches the page as text (el), never as HTML.
(function () {
  "use strict";

  window.geogrid.pages = Object.assign(window.geogrid.pages || {}, { worker: workerPage });

  function workerPage(kit) {
    const { config, map, el, t, label, reason, when, notice: show, api, panelTabs, ready, dayField, photoStrip, caseHistory } = kit;
    const showTab = panelTabs();
    // What happened, said where the thumb is (a phone shows it at the bottom of the screen): news goes away by
    // itself after a few seconds, a refusal stays until it is tapped.
    let fading = null;
    function notice(text, kind) {
      clearTimeout(fading);
      show(text, kind);
      if (text && kind !== "error") fading = setTimeout(() => show(""), 4000);
    }
    const cellsLayer = window[config.cells];
    const style = (feature) => ({ color: "#333", weight: 2, fillOpacity: 0.35, fillColor: config.colours[feature.properties.state] });
    cellsLayer.options.style = style;  // the cells are redrawn from /api/me/day with the same colours
    const $ = (id) => document.getElementById(id);
    let cells = cellsLayer.getLayers().map((layer) => layer.feature);
    let me = null;          // the latest position: {lat, lng, accuracy}
    let picked = null;      // a point tapped on the map for a report
    let picking = false;
    const caseMarks = L.layerGroup().addTo(map);  // their cases
    // The worker's position in a pane of its own, over the cases and the cells' names.
    map.createPane("geogrid-me").style.zIndex = 700;
    const meRenderer = L.svg({ pane: "geogrid-me" });
    const marks = L.layerGroup().addTo(map);
    const CASE = { open: "#6a3d9a", late: "#d62728" };
    const walked = L.polyline([], { color: "#1f4e79", weight: 4, opacity: 0.8, dashArray: "6 4" }).addTo(map);  // not sent yet
    const sentTracks = L.geoJSON(config.tracks, { style: { color: "#1f4e79", weight: 4, opacity: 0.8 }, interactive: false }).addTo(map);
    const pickedMark = L.layerGroup().addTo(map);

    // -- cells ----------------------------------------------------------------------------

    const legend = $("legend");
    for (const state of ["todo", "done", "repaired"]) {
      legend.append(el("li", {}, el("span", { class: "swatch", style: "background:" + config.colours[state] }), label("cell_state", state)));
    }
    legend.append(
      el("li", {}, el("span", { class: "swatch round", style: "background:#1f77b4" }), t("You (the ring: how sure the phone is)")),
      el("li", {}, el("span", { class: "swatch round", style: "background:" + CASE.open }), t("Your cases (red: overdue)")));

    // A cell's name (its code when it has none): workers know their cells by name.
    function cellName(code) {
      const found = cells.find((f) => f.properties.code === code);
      return found ? found.properties.name || code : code;
    }

    function inside(point, geometry) {
      // Ray casting over the rings (holes flip it back): good enough for a cell on a phone.
      const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
      let hit = false;
      for (const rings of polygons) {
        for (const ring of rings) {
          for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
            const [xi, yi] = ring[i], [xj, yj] = ring[j];
            if ((yi > point.lat) !== (yj > point.lat) && point.lng < ((xj - xi) * (point.lat - yi)) / (yj - yi) + xi) hit = !hit;
          }
        }
      }
      return hit;
    }

    function cellAt(point) {
      return cells.find((f) => inside(point, f.geometry)) || null;
    }

    function centre(feature) {
      return L.geoJSON(feature).getBounds().getCenter();
    }

    function stateText(p) {
      return label("cell_state", p.state) + " · " + t("patrols {n} of {needed}", { n: p.rule_visits, needed: p.needed });
    }

    // Each cell named on the map by the last word of its name (单元1), as the list names it in full.
    function labelCells() {
      cellsLayer.eachLayer((layer) => {
        const p = layer.feature.properties;
        layer.bindTooltip(String(p.name || p.code).split(/\s+/).pop(), { permanent: true, direction: "center", className: "grid-label" });
      });
    }

    function drawCells() {
      const list = $("cells");
      const order = { todo: 0, repaired: 1, done: 2 };
      const distance = (f) => (me ? map.distance(me, centre(f)) : 0);
      const sorted = [...cells].sort((a, b) => order[a.properties.state] - order[b.properties.state] || distance(a) - distance(b) ||
        a.properties.code.localeCompare(b.properties.code));
      const here = me ? cellAt(me) : null;
      list.replaceChildren(...sorted.map((f) => {
        const p = f.properties;
        const away = me ? Math.round(map.distance(me, centre(f))) : null;
        return el("li", { class: "cell " + p.state, "data-code": p.code },
          el("span", { class: "swatch", style: "background:" + config.colours[p.state] }),
          el("div", { class: "what" },
            el("b", {}, p.name || p.code), here && here.properties.code === p.code ? el("span", { class: "here" }, t("you are here")) : null,
            el("br"), el("span", { class: "state" }, stateText(p)),
            p.visits ? el("span", { class: "hint" }, " · " + t("last {at}", { at: when(p.times[p.times.length - 1].exit).slice(11) })) : null,
            p.reasons.length && p.state === "todo" ? el("div", { class: "hint" }, p.reasons.map(reason).join(t("; "))) : null),
          el("button", { type: "button", class: "go", onclick: () => map.fitBounds(L.geoJSON(f).getBounds(), { maxZoom: 18 }) },
            away !== null && !(here && here.properties.code === p.code) ? t("Show ({m} m)", { m: away }) : t("Show")));
      }));
      const done = cells.filter((f) => f.properties.state !== "todo").length;
      $("today-counts").textContent = t("Done {done} of {all} cells", { done, all: cells.length });
    }

    async function loadDay() {
      const fc = await api("GET", "/api/me/day?date=" + encodeURIComponent(config.day));
      cells = fc.features;
      cellsLayer.clearLayers();
      cellsLayer.addData(fc);
      labelCells();
      sentTracks.clearLayers();
      sentTracks.addData(fc.tracks);
      drawCells();
      fillRepairCells();
    }

    cellsLayer.on("click", (e) => {
      if (picking) return;  // the map's own click takes the point
      const code = e.layer.feature.properties.code;
      showTab("cells");
      const item = document.querySelector('#cells li[data-code="' + CSS.escape(code) + '"]');
      if (item) { item.classList.add("picked"); item.scrollIntoView({ block: "nearest" }); setTimeout(() => item.classList.remove("picked"), 1500); }
    });

    // -- position -------------------------------------------------------------------------

    function sayPosition() {
      const line = $("position");
      if (!me) return;
      const here = cellAt(me);
      line.textContent = here
        ? t("You are in {name} ({state}), within {m} m", { name: here.properties.name || here.properties.code,
          state: label("cell_state", here.properties.state), m: Math.round(me.accuracy) })
        : t("You are outside your cells, within {m} m", { m: Math.round(me.accuracy) });
      line.className = "position" + (here ? "" : " away");
    }

    function onPosition(p) {
      const first = me === null;
      me = { lat: p.coords.latitude, lng: p.coords.longitude, accuracy: p.coords.accuracy };
      marks.clearLayers();
      marks.addLayer(L.circle(me, { radius: me.accuracy, color: "#1f77b4", weight: 1, fillColor: "#1f77b4", fillOpacity: 0.12,
        interactive: false, pane: "geogrid-me", renderer: meRenderer }));
      marks.addLayer(L.circleMarker(me, { radius: 7, color: "#fff", weight: 2, fillColor: "#1f77b4", fillOpacity: 1,
        interactive: false, pane: "geogrid-me", renderer: meRenderer }));
      sayPosition();
      if (first) drawCells();
      if (recording) record(p);
      if (!picking && document.querySelector('input[name="report-where"]:checked').value === "me") sayReportPoint();
    }

    function onPositionError(err) {
      const why = err.code === 1 ? t("the browser was not allowed to tell it") : err.code === 3 ? t("it took too long") : err.message;
      $("position").textContent = t("Your position is not known: {why}. Reports can be placed by tapping the map.", { why });
      $("position").className = "position away";
    }

    if (navigator.geolocation) {
      navigator.geolocation.watchPosition(onPosition, onPositionError, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
    } else {
      $("position").textContent = t("This browser cannot tell your position. Reports can be placed by tapping the map.");
    }

    // -- cases ----------------------------------------------------------------------------

    function timeLeft(c) {
      if (!c.deadline) return "";
      const hours = Math.round((new Date(c.deadline) - Date.now()) / 3600000);
      if (c.overdue) return t("{h} h overdue", { h: Math.max(1, -hours) });
      return ["resolved", "handled_on_spot"].includes(c.status) ? "" : t("{h} h left", { h: Math.max(0, hours) });
    }

    function may(c, step) {
      const allowed = (config.transitions[c.status] || []).includes(step);
      const needs = config.worker_steps[step];
      return allowed && c.standing.includes(needs) && c.status !== step;
    }

    // A form under a case: its fields, then Send; *send* gets the form's values and throws to refuse.
    function stepForm(item, title, fields, send) {
      item.querySelector(".step-form")?.remove();
      const form = el("form", { class: "step-form" }, el("h4", {}, title), ...fields,
        el("div", { class: "row" }, el("button", { type: "submit", class: "primary" }, t("Send")),
          el("button", { type: "button", onclick: () => form.remove() }, t("Cancel"))));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const button = form.querySelector("button[type=submit]");
        button.disabled = true;
        try { await send(form); form.remove(); } catch (err) { notice(err.message, "error"); button.disabled = false; }
      });
      item.append(form);
      form.querySelector("textarea, input")?.focus();
    }

    function noteField(name, text) {
      return [el("label", { for: name }, text), el("textarea", { id: name, name: "note", rows: 2, required: true })];
    }

    function photoField(name) {
      const input = el("input", { id: name, name: "photos", type: "file", accept: "image/jpeg,image/png,image/webp", capture: "environment", multiple: true });
      return [fileButton(input, t("Take or choose photos"))];
    }

    // A file field as a big button in the page's words (the browser's own says "Choose Files" in its language),
    // with what was chosen under it.
    function fileButton(input, text) {
      const chosen = el("span", { class: "chosen" });
      input.classList.add("hidden-file");
      input.addEventListener("change", () => {
        const n = input.files.length;
        chosen.textContent = !n ? "" : n === 1 ? input.files[0].name : t("{n} files chosen", { n });
      });
      return el("label", { class: "file-button" }, el("span", { class: "button" }, text), input, chosen);
    }
    // A form put back to empty forgets the files' names too.
    document.addEventListener("reset", (e) => { for (const c of e.target.querySelectorAll(".file-button .chosen")) c.textContent = ""; }, true);
    for (const input of document.querySelectorAll("#panel input[type=file][data-button]")) {
      const holder = document.createElement("span");
      input.replaceWith(holder);
      holder.replaceWith(fileButton(input, input.dataset.button));
    }

    async function sendPhotos(url, input) {
      const files = [...(input?.files || [])];
      for (const [n, file] of files.entries()) {
        if (file.size > config.photo_max_bytes) throw new Error(t("{name} is too large: at most {mb} MB", { name: file.name, mb: Math.floor(config.photo_max_bytes / 1048576) }));
        notice(t("Sending photo {n} of {all}…", { n: n + 1, all: files.length }));
        await api("POST", url, file);
      }
      return files.length;
    }

    function caseItem(c) {
      const item = el("li", { class: "case" + (c.overdue ? " overdue" : ""), "data-id": c.id });
      const buttons = el("div", { class: "actions" });
      const refresh = async (said) => { await loadCases(); notice(said); };
      if (may(c, "in_progress")) {
        buttons.append(el("button", { type: "button", class: "primary", "data-step": "in_progress", onclick: async () => {
          try { await api("POST", "/api/incidents/" + c.id + "/transition", { to: "in_progress", note: "" }); } catch (err) { notice(err.message, "error"); return; }
          refresh(t("Case #{id} taken up.", { id: c.id }));
        } }, t("Take it up")));
      }
      if (may(c, "resolved")) {
        buttons.append(el("button", { type: "button", "data-step": "resolved", onclick: () => stepForm(item, t("Report back"),
          [...noteField("note-" + c.id, t("What was done")), ...photoField("photos-" + c.id)], async (form) => {
            const note = form.note.value.trim();
            if (!note) throw new Error(t("Say what was done."));
            const n = await sendPhotos("/api/incidents/" + c.id + "/photos", form.photos);
            await api("POST", "/api/incidents/" + c.id + "/transition", { to: "resolved", note });
            refresh(t("Case #{id}: reported back with {n} photo(s); the center checks it.", { id: c.id, n }));
          }) }, t("Report back")));
      }
      if (may(c, "handled_on_spot")) {
        buttons.append(el("button", { type: "button", "data-step": "handled_on_spot", onclick: () => stepForm(item, t("Handled on the spot"),
          [...noteField("spot-" + c.id, t("What was done")), ...photoField("spot-photos-" + c.id)], async (form) => {
            const note = form.note.value.trim();
            if (!note) throw new Error(t("Say what was done."));
            await sendPhotos("/api/incidents/" + c.id + "/photos", form.photos);
            await api("POST", "/api/incidents/" + c.id + "/transition", { to: "handled_on_spot", note });
            refresh(t("Case #{id} handled on the spot.", { id: c.id }));
          }) }, t("Handled on the spot")));
      }
      if (c.standing.includes("handler") && !c.open_delay && !["resolved", "handled_on_spot", "pending", "postponed"].includes(c.status)) {
        buttons.append(el("button", { type: "button", "data-step": "delay", onclick: () => stepForm(item, t("Ask for more time"),
          [el("label", { for: "hours-" + c.id }, t("Hours more")), el("input", { id: "hours-" + c.id, name: "hours", type: "number", min: 1, max: 720, value: 24, inputmode: "numeric" }),
            ...noteField("why-" + c.id, t("Reason"))], async (form) => {
            const hours = Number(form.hours.value), reason = form.note.value.trim();
            if (!(hours > 0)) throw new Error(t("Say how many hours more."));
            if (!reason) throw new Error(t("Say why."));
            await api("POST", "/api/incidents/" + c.id + "/delay", { kind: "extend", hours, reason });
            refresh(t("Case #{id}: more time asked for; the center decides.", { id: c.id }));
          }) }, t("Ask for more time")));
      }
      buttons.append(el("button", { type: "button", "data-step": "photo", onclick: () => stepForm(item, t("Add photos"), photoField("more-" + c.id), async (form) => {
        const n = await sendPhotos("/api/incidents/" + c.id + "/photos", form.photos);
        if (!n) throw new Error(t("Choose a photo first."));
        refresh(t("{n} photo(s) added to case #{id}.", { n, id: c.id }));
      }) }, t("Add photos")));
      buttons.append(el("button", { type: "button", "data-step": "show", onclick: () => showCase(c, item) }, t("Details")));
      item.append(...[
        el("div", { class: "head" }, el("b", {}, label("category", c.category)), " #" + c.id,
          el("span", { class: "state" + (c.overdue ? " late" : "") }, " · " + label("status", c.status)),
          timeLeft(c) ? el("span", { class: "left" + (c.overdue ? " late" : "") }, " · " + timeLeft(c)) : null),
        el("div", { class: "hint" }, (c.grid_name || c.grid_code || t("no cell")) + " · " +
          (c.standing.includes("handler") ? t("dispatched to you") : t("reported by you")) + (c.open_delay ? " · " + t("more time asked for") : "") +
          (c.photos ? " · " + t("{n} photo(s)", { n: c.photos }) : "")),
        c.description ? el("div", { class: "desc" }, c.description) : null,
        buttons].filter(Boolean));
      return item;
    }

    async function showCase(c, item) {
      map.setView([c.lat, c.lon], Math.max(map.getZoom(), 17));
      let detail;
      try { detail = await api("GET", "/api/incidents/" + c.id); } catch (err) { notice(err.message, "error"); return; }
      item.querySelector(".case-detail")?.remove();
      const shown = el("div", { class: "case-detail" },
        detail.photos.length ? photoStrip(detail.photos) : el("p", { class: "hint" }, t("No photos yet.")), caseHistory(detail));
      item.append(shown);
      shown.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }

    async function loadCases() {
      let list;
      try { list = await api("GET", "/api/me/cases"); } catch (err) { notice(err.message, "error"); return; }
      $("case-count").textContent = list.length ? String(list.length) : "";
      $("my-cases").replaceChildren(...(list.length ? list.map(caseItem) : [el("li", { class: "hint" }, t("No open cases."))]));
      caseMarks.clearLayers();
      for (const c of list) {
        caseMarks.addLayer(L.circleMarker([c.lat, c.lon], { radius: 7, color: "#fff", weight: 2,
          fillColor: c.overdue ? CASE.late : CASE.open, fillOpacity: 0.95 }).bindTooltip(label("category", c.category) + " #" + c.id)
          .on("click", () => { showTab("cases"); document.querySelector('#my-cases li[data-id="' + c.id + '"]')?.scrollIntoView({ block: "nearest" }); }));
      }
    }

    // -- a new report ---------------------------------------------------------------------

    const major = $("report-major"), minor = $("report-category");
    major.append(el("option", { value: "" }, t("Choose a class")), ...config.classes.map((k) => el("option", { value: k.code }, k.name)));
    function fillMinor() {
      const k = config.classes.find((x) => x.code === major.value);
      minor.replaceChildren(el("option", { value: "" }, t("Choose a category")),
        ...(k ? k.categories.map((c) => el("option", { value: c.code }, c.name)) : []));
    }
    major.addEventListener("change", fillMinor);
    fillMinor();

    function reportPoint() {
      const where = document.querySelector('input[name="report-where"]:checked').value;
      return where === "me" ? me : picked;
    }

    function sayReportPoint() {
      const point = reportPoint(), where = document.querySelector('input[name="report-where"]:checked').value;
      $("report-point").textContent = point
        ? t("At {lat}, {lng}", { lat: point.lat.toFixed(6), lng: point.lng.toFixed(6) }) + (where === "me" ? " · " + t("within {m} m", { m: Math.round(me.accuracy) }) : "")
        : where === "me" ? t("Your position is not known yet.") : t("Tap the map where it is.");
    }

    for (const radio of document.querySelectorAll('input[name="report-where"]')) {
      radio.addEventListener("change", () => {
        picking = radio.value === "map" && radio.checked;
        map.getContainer().classList.toggle("picking", picking);
        sayReportPoint();
      });
    }
    map.on("click", (e) => {
      if (!picking) return;
      picked = e.latlng;
      pickedMark.clearLayers();
      pickedMark.addLayer(L.marker(picked));
      sayReportPoint();
    });

    // An id of the report made on this phone: sent twice (a retry on a bad network), it is one case.
    function reportId() {
      return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2);
    }

    let pendingId = reportId();
    $("report-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = e.target, button = form.querySelector("button[type=submit]");
      const point = reportPoint(), category = minor.value, description = $("report-description").value.trim();
      const files = [...$("report-photos").files];
      if (!category) { notice(t("Choose the category."), "error"); return; }
      if (!description) { notice(t("Say what it is."), "error"); return; }
      if (!point) { notice(t("The place is not known: wait for your position or tap the map."), "error"); return; }
      if (files.length > config.photos_per_item) { notice(t("At most {n} photos.", { n: config.photos_per_item }), "error"); return; }
      button.disabled = true;
      try {
        const made = await api("POST", "/api/incidents", {
          lon: Number(point.lng.toFixed(7)), lat: Number(point.lat.toFixed(7)), category, description, source: "patrol",
          gps_accuracy_m: point === me ? Math.round(me.accuracy * 10) / 10 : undefined, external_id: pendingId,
        });
        const n = await sendPhotos("/api/incidents/" + made.id + "/photos", $("report-photos"));
        if ($("report-on-spot").checked) {
          await api("POST", "/api/incidents/" + made.id + "/transition", { to: "handled_on_spot", note: description });
        }
        pendingId = reportId();
        form.reset();
        fillMinor();
        picked = null;
        pickedMark.clearLayers();
        picking = false;
        map.getContainer().classList.remove("picking");
        notice(t("Reported: case #{id} in {cell}, with {n} photo(s).", { id: made.id, cell: made.grid_code ? cellName(made.grid_code) : t("no cell"), n }));
        await loadCases();
      } catch (err) {
        notice(err.message, "error");
      } finally {
        button.disabled = false;
        sayReportPoint();
      }
    });

    // -- 补签 -----------------------------------------------------------------------------

    function fillRepairCells() {
      const select = $("repair-cell"), kept = select.value;
      select.replaceChildren(el("option", { value: "" }, t("Choose a cell")),
        ...cells.map((f) => el("option", { value: f.properties.code }, f.properties.name || f.properties.code)));
      select.value = kept;
    }
    dayField($("repair-day"));
    // A missed patrol is noticed the day after: the form starts on yesterday.
    function yesterday() {
      const d = new Date(config.day + "T12:00:00Z");
      d.setUTCDate(d.getUTCDate() - 1);
      return d.toISOString().slice(0, 10);
    }
    $("repair-day").value = yesterday();

    async function loadRepairs() {
      let list;
      try { list = await api("GET", "/api/patrols/repairs"); } catch (err) { notice(err.message, "error"); return; }
      $("my-repairs").replaceChildren(...(list.length ? list.map((r) => el("li", { class: "repair " + r.status, "data-id": r.id },
        el("b", {}, r.day), " · " + cellName(r.grid_code) + " · " + when(r.claimed_at).slice(11) + " · ",
        el("span", { class: "status" }, label("repair", r.status)), el("br"), r.reason,
        r.note ? el("span", { class: "hint" }, " — " + r.note) : null,
        r.photos.length ? photoStrip(r.photos.map((id) => ({ id, url: "/api/photos/" + id }))) : null))
        : [el("li", { class: "hint" }, t("No requests."))]));
    }

    $("repair-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = e.target, button = form.querySelector("button[type=submit]");
      const day = $("repair-day").value.trim(), code = $("repair-cell").value, time = $("repair-time").value.trim();
      const reasonText = $("repair-reason").value.trim();
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) { notice(t("Type the day as year-month-day, e.g. 2026-11-29."), "error"); return; }
      if (!code) { notice(t("Choose the cell."), "error"); return; }
      const m = time.match(/^(\d{1,2})[:：](\d{2})$/);
      if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) { notice(t("Type the time as hours:minutes, e.g. 09:30."), "error"); return; }
      if (!reasonText) { notice(t("Say why."), "error"); return; }
      button.disabled = true;
      try {
        const made = await api("POST", "/api/patrols/repairs", { grid_code: code, date: day,
          at: day + "T" + m[1].padStart(2, "0") + ":" + m[2], reason: reasonText });
        const n = await sendPhotos("/api/patrols/repairs/" + made.id + "/photos", $("repair-photo"));
        form.reset();
        $("repair-day").value = yesterday();
        notice(t("Asked: 补签 of {code} on {day}, with {n} photo(s); your supervisor decides.", { code: cellName(code), day, n }));
        await loadRepairs();
      } catch (err) {
        notice(err.message, "error");
      } finally {
        button.disabled = false;
      }
    });

    // -- the track, sent as it is walked ----------------------------------------------------
    // Fixes wait in this browser's storage until the server has them: a dead zone or a closed
    // tab loses nothing. The server joins each minute's piece to the track before it.

    const KEY = "geogrid.track.fixes", ON = "geogrid.track.on";
    let recording = false, timer = null, lock = null, sent = 0;
    const stored = () => { try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (err) { return []; } };
    const store = (fixes) => { try { localStorage.setItem(KEY, JSON.stringify(fixes)); } catch (err) { /* full or private: kept in memory */ } };
    let queue = stored();

    function record(p) {
      const time = new Date(p.timestamp || Date.now()).toISOString();
      if (queue.length && queue[queue.length - 1].time >= time) return;
      queue.push({ time, lon: p.coords.longitude, lat: p.coords.latitude, accuracy: p.coords.accuracy });
      store(queue);
      walked.addLatLng([p.coords.latitude, p.coords.longitude]);
      sayTrack();
    }

    function sayTrack(extra) {
      $("track-status").textContent = (recording ? t("Recording.") : t("Not recording.")) + " " +
        t("{waiting} fix(es) waiting to be sent, {sent} sent.", { waiting: queue.length, sent }) + (extra ? " " + extra : "");
    }

    async function flush() {
      if (!queue.length) { sayTrack(); return; }
      const batch = queue.slice();
      const fc = { type: "FeatureCollection", features: batch.map((f) => ({ type: "Feature",
        geometry: { type: "Point", coordinates: [f.lon, f.lat] }, properties: { time: f.time, accuracy: f.accuracy } })) };
      let report;
      try {
        report = await api("POST", "/api/patrols?format=geojson", new Blob([JSON.stringify(fc)], { type: "application/geo+json" }));
      } catch (err) {
        sayTrack(t("Not sent ({reason}); tried again in a minute.", { reason: err.message }));
        return;
      }
      queue = queue.slice(batch.length);
      store(queue);
      sent += batch.length;
      const dropped = Object.values(report.dropped || {}).reduce((a, b) => a + b, 0);
      sayTrack(t("Last sent {at}: {stored} kept, {dropped} dropped.", { at: when(new Date().toISOString()).slice(11), stored: report.stored, dropped }));
      await loadDay();
    }

    async function start() {
      if (!navigator.geolocation) { notice(t("This browser cannot tell your position."), "error"); return; }
      recording = true;
      try { localStorage.setItem(ON, "1"); } catch (err) { /* private mode */ }
      $("track-start").hidden = true;
      $("track-stop").hidden = false;
      document.querySelector("[data-tab=track]").classList.add("recording");
      // Where the walk starts: the position the phone gave last, now.
      if (me) record({ timestamp: Date.now(), coords: { latitude: me.lat, longitude: me.lng, accuracy: me.accuracy } });
      timer = setInterval(flush, 60000);
      try { lock = navigator.wakeLock ? await navigator.wakeLock.request("screen") : null; } catch (err) { lock = null; }
      sayTrack();
    }

    async function stop() {
      recording = false;
      try { localStorage.removeItem(ON); } catch (err) { /* private mode */ }
      clearInterval(timer);
      if (lock) { lock.release().catch(() => {}); lock = null; }
      $("track-start").hidden = false;
      $("track-stop").hidden = true;
      document.querySelector("[data-tab=track]").classList.remove("recording");
      await flush();
    }

    $("track-start").addEventListener("click", start);
    $("track-stop").addEventListener("click", stop);
    $("track-send").addEventListener("click", flush);
    $("track-file").addEventListener("change", async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      const format = { gpx: "gpx", csv: "csv", geojson: "geojson", json: "geojson" }[(file.name.split(".").pop() || "").toLowerCase()];
      if (!format) { notice(t("A track file is .gpx, .csv or .geojson."), "error"); return; }
      try {
        const report = await api("POST", "/api/patrols?format=" + format, file);
        notice(t("{name}: {read} fixes read, {stored} kept.", { name: file.name, read: report.read, stored: report.stored }));
        await loadDay();
      } catch (err) {
        notice(err.message, "error");
      } finally {
        e.target.value = "";
      }
    });
    try { if (localStorage.getItem(ON) === "1") start(); } catch (err) { /* private mode */ }
    sayTrack();

    // -- start ----------------------------------------------------------------------------

    // On a phone the notice floats at the bottom of the screen, where the thumb is; a tap puts it away.
    document.getElementById("notice").addEventListener("click", () => notice(""));

    labelCells();
    drawCells();
    fillRepairCells();
    Promise.all([loadCases(), loadRepairs()]).finally(ready);
  }
})();
