// Collections chart of the finance reports page, from the JSON the page carries (json_script).
(function () {
  const element = document.getElementById("collections-chart");
  if (!element || typeof echarts === "undefined") return;
  const data = JSON.parse(document.getElementById("collections-data").textContent);
  const chart = echarts.init(element, null, { renderer: "svg" });
  const money = (value) => Number(value).toLocaleString(document.documentElement.lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  chart.setOption({
    animation: false,
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
    legend: { top: 4 },
    tooltip: { trigger: "axis", valueFormatter: money },
    xAxis: { type: "category", data: data.months },
    yAxis: { type: "value", axisLabel: { formatter: (value) => Number(value).toLocaleString(document.documentElement.lang) } },
    series: [
      { name: data.labels.received, type: "bar", data: data.received, itemStyle: { color: "#1f6feb" } },
      { name: data.labels.refunded, type: "bar", data: data.refunded, itemStyle: { color: "#d97706" } },
      { name: data.labels.net, type: "line", data: data.net, itemStyle: { color: "#198754" }, symbolSize: 6 },
    ],
  });
  window.addEventListener("resize", () => chart.resize());
})();
