// The indicator dashboard: the whole area's figures, a bar chart per unit, the trend and the
// ranking (综合评价), from /api/indicators and /api/indicators/trend. Charts by ECharts (npm).
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("geogrid-config").textContent);
  const el = window.geogrid.el;  // common.js
  const t = window.geogrid.translator(config.messages);
  const form = document.getElementById("period");
  const field = (name) => form.elements[name];

  // The names of the indicators (docs/kpis.md), in the page's language.
  const NAMES = {
    received: t("received"), due: t("due to close"), closed: t("closed"), pending: t("pending list"),
    acceptance_rate: t("registration rate"), dispatch_rate: t("dispatch rate"), closure_rate: t("closure rate"),
    on_time_rate: t("on-time closure rate"), rework_rate: t("rework rate"), extension_rate: t("extension rate"),
    handling_rate: t("handling rate"), satisfaction_rate: t("satisfaction rate"), completion_rate: t("completion rate"),
    score: t("score"), rank: t("rank"), name: t("name"),
  };
  const percent = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%");
  const number = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(config.language === "en" ? "en" : "zh-CN"));

  async function get(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && (data.detail || data.title)) || response.statusText);
    return data;
  }

  // Quick periods: this or last week (Monday to Sunday), this or last month, in the center's calendar.
  const iso = (d) => d.toISOString().slice(0, 10);
  function period(kind) {
    const today = new Date(config.today + "T00:00:00Z");
    let start;
    let end;
    if (kind === "last-7-days") {
      end = today;
      start = new Date(today);
      start.setUTCDate(today.getUTCDate() - 6);
    } else if (kind.endsWith("week")) {
      start = new Date(today);
      start.setUTCDate(today.getUTCDate() - ((today.getUTCDay() + 6) % 7) - (kind === "last-week" ? 7 : 0));
      end = new Date(start);
      end.setUTCDate(start.getUTCDate() + 6);
    } else {
      start = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - (kind === "last-month" ? 1 : 0), 1));
      end = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 0));
    }
    if (end > today) end = today;
    field("from").value = iso(start);
    field("to").value = iso(end);
    field("step").value = kind.endsWith("month") ? "week" : "day";
    for (const button of form.querySelectorAll("[data-period]")) button.setAttribute("aria-pressed", String(button.dataset.period === kind));
    show();
  }
  for (const button of form.querySelectorAll("[data-period]")) button.addEventListener("click", () => period(button.dataset.period));
  // Days typed by hand: no quick period is the one shown.
  for (const name of ["from", "to"]) {
    field(name).addEventListener("change", () => {
      for (const button of form.querySelectorAll("[data-period]")) button.setAttribute("aria-pressed", "false");
    });
  }

  // ECharts is loaded after this script (so that the figures are asked for while it loads): the charts are made
  // when the page has been read.
  let unitsChart = null;
  let trendChart = null;
  const chartsReady = new Promise((resolve) => document.addEventListener("DOMContentLoaded", () => {
    unitsChart = echarts.init(document.getElementById("chart-units"));
    trendChart = echarts.init(document.getElementById("chart-trend"));
    window.addEventListener("resize", () => { unitsChart.resize(); trendChart.resize(); });
    resolve();
  }));

  function tiles(total) {
    const box = document.getElementById("tiles");
    const shown = ["received", "acceptance_rate", "dispatch_rate", "closure_rate", "on_time_rate", "rework_rate",
      "extension_rate", "pending", "satisfaction_rate", "completion_rate"];
    box.replaceChildren(...shown.map((key) => {
      const rate = key.endsWith("_rate");
      const bad = (key === "on_time_rate" || key === "closure_rate") && total[key] !== null && total[key] < 0.8;
      return el("div", { class: "tile" + (bad ? " bad" : ""), "data-key": key }, el("span", {}, NAMES[key]),
        el("b", {}, rate ? percent(total[key]) : number(total[key])));
    }));
  }

  const MAX_BARS = 20;
  // The ranking table shows the first units (a level may have thousands of cells).
  const SHOWN = 200;
  function unitsChartOf(units, count, byName) {
    const shown = units.filter((u) => u.received > 0).slice(0, MAX_BARS);
    document.getElementById("units-title").textContent = count > MAX_BARS
      ? t("Closure by {by}: the first {n} of {total} in the ranking", { by: byName, n: MAX_BARS, total: count })
      : t("Closure by {by}", { by: byName });
    const series = ["closure_rate", "on_time_rate", "satisfaction_rate"].map((key) => ({
      name: NAMES[key], type: "bar", data: shown.map((u) => (u[key] === null ? null : Math.round(u[key] * 1000) / 10)),
    }));
    unitsChart.setOption({
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "–" : v + "%") },
      legend: { top: 0 }, grid: { left: 40, right: 10, top: 30, bottom: 70 },
      xAxis: { type: "category", data: shown.map((u) => u.name || u.key || t("none")), axisLabel: { rotate: 35, interval: 0, fontSize: 11 } },
      yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
      series,
    }, true);
  }

  function trendChartOf(periods) {
    const labels = periods.map((p) => p.from.slice(5, 10));
    trendChart.setOption({
      tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: { left: 45, right: 45, top: 30, bottom: 30 },
      xAxis: { type: "category", data: labels },
      yAxis: [{ type: "value", name: NAMES.received }, { type: "value", max: 100, axisLabel: { formatter: "{value}%" } }],
      series: [
        { name: NAMES.received, type: "bar", data: periods.map((p) => p.received), itemStyle: { color: "#9bb7d4" } },
        ...["closure_rate", "on_time_rate"].map((key) => ({
          name: NAMES[key], type: "line", yAxisIndex: 1, connectNulls: false,
          data: periods.map((p) => (p[key] === null ? null : Math.round(p[key] * 1000) / 10)),
        })),
      ],
    }, true);
  }

  const COLUMNS = ["rank", "name", "received", "due", "closed", "closure_rate", "on_time_rate", "rework_rate",
    "extension_rate", "satisfaction_rate", "pending", "score"];
  let rows = [];
  let sortKey = null;
  let sortDown = true;
  function ranking(units) {
    rows = units;
    const table = document.getElementById("ranking");
    table.tHead.replaceChildren(el("tr", {}, COLUMNS.map((key) => el("th", {
      class: "sortable" + (key === "name" ? "" : " n"), "data-key": key, title: t("sort"),
      onclick: () => { sortDown = sortKey === key ? !sortDown : key !== "rank"; sortKey = key; draw(); },
    }, NAMES[key] || t(key)))));
    draw();
  }
  function draw() {
    const sorted = [...rows];
    if (sortKey) {
      sorted.sort((a, b) => {
        const x = a[sortKey];
        const y = b[sortKey];
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * (sortDown ? -1 : 1);
      });
    }
    document.querySelector("#ranking tbody").replaceChildren(...sorted.map((u) => el("tr", { "data-key": u.key },
      COLUMNS.map((key) => {
        if (key === "name") return el("td", {}, u.name || u.key || t("none"), u.key && u.name ? el("span", { class: "code" }, " " + u.key) : null);
        const value = u[key];
        return el("td", { class: "n" }, key.endsWith("_rate") ? percent(value) : key === "rank" && value === null ? t("unranked") : number(value));
      }))));
  }

  // The patrol indicators (巡查) for the same period, by worker or by grid of the chosen level.
  const PATROL_COLUMNS = {
    person: ["name", "cell_days", "met", "coverage_rate", "missed_days", "patrol_days", "km", "hours"],
    grid: ["name", "cell_days", "met", "coverage_rate", "missed_cell_days"],
  };
  const PATROL_NAMES = {
    cell_days: t("cell-days on duty"), met: t("cell-days meeting the rule"), coverage_rate: t("patrol coverage"),
    missed_days: t("days with a missed cell"), patrol_days: t("days patrolled"), km: t("km patrolled"),
    hours: t("hours on patrol"), missed_cell_days: t("cell-days missed"), name: t("name"),
  };
  async function patrols(range, by, level) {
    const table = document.getElementById("patrols");
    if (!table) return;
    if (by === "department") {
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren(el("tr", {}, el("td", { class: "hint" }, t("Patrols are by worker or by grid."))));
      return;
    }
    const query = new URLSearchParams(range);
    query.set("by", by === "person" ? "person" : "grid");
    if (level) query.set("level", level);
    const body = await get("/api/patrols/indicators?" + query.toString());
    const columns = PATROL_COLUMNS[body.by];
    table.tHead.replaceChildren(el("tr", {}, columns.map((key) => el("th", { class: key === "name" ? "" : "n" }, PATROL_NAMES[key]))));
    table.tBodies[0].replaceChildren(...body.units.slice(0, SHOWN).map((u) => el("tr", { "data-key": u.key },
      columns.map((key) => key === "name"
        ? el("td", {}, u.name || String(u.key), body.by === "grid" ? el("span", { class: "code" }, " " + u.key) : null)
        : el("td", { class: "n" }, key === "coverage_rate" ? percent(u[key]) : number(u[key]))))));
  }

  async function show() {
    const [by, level] = field("by").value.split(":");
    const range = new URLSearchParams({ from: field("from").value, to: field("to").value });
    const unitQuery = new URLSearchParams(range);
    unitQuery.set("by", by);
    if (level) unitQuery.set("level", level);
    document.getElementById("export").href = "/api/indicators.xlsx?" + range.toString();
    const status = document.getElementById("status");
    status.textContent = t("Loading…");
    try {
      const trendQuery = new URLSearchParams(range);
      trendQuery.set("step", field("step").value);
      unitQuery.set("limit", String(SHOWN));
      const [units, trend] = await Promise.all([
        get("/api/indicators?" + unitQuery.toString()),
        get("/api/indicators/trend?" + trendQuery.toString()),
        chartsReady,
      ]);
      patrols(range, by, level).catch((err) => { status.textContent = t("Refused: {detail}", { detail: err.message }); });
      tiles(units.total);
      unitsChartOf(units.units, units.count, field("by").selectedOptions[0].textContent);
      trendChartOf(trend.periods);
      ranking(units.units);
      document.getElementById("shown").textContent = units.count > units.units.length
        ? t("The first {n} of {total} in the ranking; the workbook has them all.", { n: units.units.length, total: units.count })
        : "";
      const weights = Object.entries(units.weights).map(([k, w]) => (NAMES[k] || k) + " " + w).join("，");
      document.getElementById("weights").textContent = t("Score: the weighted mean of {weights}; units with fewer than {n} cases due are not ranked.",
        { weights, n: config.min_cases });
      status.textContent = "";
      document.body.dataset.ready = "1";
    } catch (err) {
      status.textContent = t("Refused: {detail}", { detail: err.message });
      status.className = "error";
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); show(); });
  show();
})();
