// Draws every element with a data-chart attribute ({kind, labels, series: [{name, values}], money})
// with the vendored ECharts. Money arrives as integer fen and is shown as yuan.
(function () {
  function yuan(fen) { return (fen / 100).toFixed(2); }
  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var spec = JSON.parse(element.getAttribute("data-chart") || "null");
    if (!spec || !window.echarts) { return; }
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", valueFormatter: spec.money ? yuan : undefined },
      legend: { top: 0 },
      grid: { left: 60, right: 16, top: 36, bottom: 36 },
      xAxis: { type: "category", data: spec.labels },
      yAxis: { type: "value", axisLabel: { formatter: spec.money ? function (v) { return yuan(v); } : undefined } },
      series: spec.series.map(function (s) { return { name: s.name, type: spec.kind, data: s.values }; })
    });
    window.addEventListener("resize", function () { chart.resize(); });
    element.setAttribute("data-drawn", "yes");
  });
  document.querySelectorAll("time[data-ms]").forEach(function (element) {
    var when = new Date(Number(element.getAttribute("data-ms")));
    element.title = when.toLocaleString();
  });
})();
