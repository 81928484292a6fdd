/* Draws the portal's metric charts with uPlot (static/vendor/uplot).
 *
 * Each chart is an element with data-chart, data-url (the REST API's metrics of a deployment:
 * {points: [{time, avg: {metric: value}, max: {...}}]}), data-unit ("%" or "bytes") and data-series
 * (JSON: [{label, stat: "avg"|"max", metric}]). Charts sharing a URL share one request.
 * No inline script: the page's Content-Security-Policy allows scripts from our own files only.
 * Charts brought by htmx swaps (another time range) are drawn when they arrive.
 */
(function () {
  "use strict";

  var COLOURS = ["#0b4f8a", "#b35c00", "#1d6b32"];
  var HEIGHT = 220;

  function formatValue(unit, value) {
    if (value === null || value === undefined) return "—";
    if (unit === "bytes") {
      var units = ["B", "KiB", "MiB", "GiB", "TiB"];
      var i = 0;
      while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
      return (i === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + units[i];
    }
    if (unit === "%") return value.toFixed(1) + " %";
    return String(value);
  }

  function widthOf(element) { return Math.max(element.clientWidth - 16, 240); }

  // Times in the page's language (the <html lang>), by the browser's own Intl rather than uPlot's English names.
  var language = document.documentElement.lang || undefined;
  var hourMinute = new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit" });
  var dayMonth = new Intl.DateTimeFormat(language, { day: "numeric", month: "short" });
  var fullTime = new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short" });

  function timeTicks(u, ticks) {
    return ticks.map(function (seconds, index) {
      var date = new Date(seconds * 1000);
      var previous = index > 0 ? new Date(ticks[index - 1] * 1000) : null;
      var newDay = !previous || previous.toDateString() !== date.toDateString();
      return hourMinute.format(date) + (newDay ? "\n" + dayMonth.format(date) : "");
    });
  }

  function plot(element, answer) {
    var unit = element.dataset.unit;
    var series = JSON.parse(element.dataset.series);
    var points = answer.points || [];
    var times = points.map(function (p) { return Date.parse(p.time) / 1000; });
    var columns = series.map(function (s) {
      return points.map(function (p) { var v = (p[s.stat] || {})[s.metric]; return v === undefined ? null : v; });
    });
    element.textContent = "";
    var hasValue = columns.some(function (c) { return c.some(function (v) { return v !== null; }); });
    if (!hasValue) {
      var empty = document.createElement("p");
      empty.className = "meta";
      empty.textContent = element.dataset.empty || "";
      element.appendChild(empty);
      return;
    }
    var options = {
      width: widthOf(element),
      height: HEIGHT,
      series: [{
        label: element.dataset.timeLabel || "",
        value: function (u, seconds) { return seconds === null ? "—" : fullTime.format(new Date(seconds * 1000)); }
      }].concat(series.map(function (s, index) {
        return {
          label: s.label,
          stroke: COLOURS[index % COLOURS.length],
          width: index === 0 ? 2 : 1,
          dash: index === 2 ? [6, 4] : undefined,
          // A service that has run for a minute has only a few readings: show them as dots, or they vanish.
          points: { show: columns[index].filter(function (v) { return v !== null; }).length < 20, size: 6 },
          value: function (u, v) { return formatValue(unit, v); }
        };
      })),
      axes: [
        { values: timeTicks },
        { size: 88, values: function (u, ticks) { return ticks.map(function (v) { return formatValue(unit, v); }); } }
      ],
      scales: { y: { range: function (u, min, max) { return [0, Math.max(max || 0, unit === "%" ? 1 : 1024) * 1.1]; } } }
    };
    element._plot = new window.uPlot(options, [times].concat(columns), element);
  }

  function drawAll(root) {
    if (typeof window.uPlot !== "function" || !root.querySelectorAll) return;
    var requests = {};
    Array.prototype.forEach.call(root.querySelectorAll("[data-chart]"), function (element) {
      if (element.dataset.drawn === "1") return;
      element.dataset.drawn = "1";
      var url = element.dataset.url;
      if (!requests[url]) {
        requests[url] = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) { if (!response.ok) throw new Error(response.status); return response.json(); });
      }
      requests[url].then(function (answer) { plot(element, answer); }).catch(function () {
        var note = document.createElement("p");
        note.className = "meta";
        note.textContent = element.dataset.unavailable || "";
        element.textContent = "";
        element.appendChild(note);
      });
    });
  }

  function resizeAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (element) {
      if (element._plot) element._plot.setSize({ width: widthOf(element), height: HEIGHT });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  // htmx:load is fired on each new element an htmx swap puts in the page (the charts of another range).
  document.addEventListener("htmx:load", function (event) { drawAll(event.target); });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeAll, 150);
  });
})();
