/* Draws the portal's metric charts with uPlot (static/vendor/uplot).
 *
 * Each chart is an element with data-chart="ID", where ID names a <script type="application/json">
 * block (Django's json_script) holding {unit, times: [unix seconds], series: [{label, values}]}.
 * No inline script: the page's Content-Security-Policy allows scripts from our own files only.
 * Charts drawn by htmx swaps (another time range) are drawn after the swap.
 */
(function () {
  "use strict";

  var COLOURS = ["#0b4f8a", "#b35c00", "#1d6b32"];

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

  function draw(element) {
    if (element.dataset.drawn === "1" || typeof window.uPlot !== "function") return;
    var source = document.getElementById(element.dataset.chart);
    if (!source) return;
    var chart = JSON.parse(source.textContent);
    var unit = chart.unit;
    element.textContent = "";
    element.dataset.drawn = "1";
    var options = {
      width: Math.max(element.clientWidth - 16, 240),
      height: 220,
      series: [{}].concat(chart.series.map(function (series, index) {
        return {
          label: series.label,
          stroke: COLOURS[index % COLOURS.length],
          width: index === 0 ? 2 : 1,
          dash: index === 2 ? [6, 4] : undefined,
          value: function (u, v) { return formatValue(unit, v); },
          spanGaps: false
        };
      })),
      axes: [
        {},
        { size: 70, values: function (u, ticks) { return ticks.map(function (v) { return formatValue(unit, v); }); } }
      ],
      scales: { y: { range: function (u, min, max) { return [0, Math.max(max || 0, unit === "%" ? 1 : 1024) * 1.1]; } } }
    };
    var data = [chart.times].concat(chart.series.map(function (series) { return series.values; }));
    var plot = new window.uPlot(options, data, element);
    element._plot = plot;
  }

  function drawAll(root) {
    var elements = (root || document).querySelectorAll("[data-chart]");
    Array.prototype.forEach.call(elements, draw);
  }

  function resizeAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (element) {
      if (element._plot) element._plot.setSize({ width: Math.max(element.clientWidth - 16, 240), height: 220 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeAll, 150);
  });
})();
