// Before the map is built: Leaflet.draw's words (its toolbar and drawing hints) in the
// page's language, from the same catalogue as maps.js (js.po), read from the page config.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("geogrid-config").textContent);
  const words = config.messages || {};
  const t = (text) => words[text] || text;
  if (!window.L || !L.drawLocal) return;
  const draw = L.drawLocal.draw;
  draw.toolbar.buttons.polyline = t("Draw a split line");
  draw.toolbar.actions = { title: t("Cancel drawing"), text: t("Cancel") };
  draw.toolbar.finish = { title: t("Finish drawing"), text: t("Finish") };
  draw.toolbar.undo = { title: t("Delete the last point drawn"), text: t("Delete last point") };
  draw.handlers.polyline.tooltip = {
    start: t("Click outside the cell to start the line."),
    cont: t("Click to go on drawing the line."),
    end: t("Click the last point to finish the line."),
  };
  draw.handlers.polyline.error = t("Error: lines cannot cross!");
  const edit = L.drawLocal.edit;
  edit.handlers.edit.tooltip = { text: t("Drag the handles to move the boundary."), subtext: t("Click cancel to undo.") };
})();
