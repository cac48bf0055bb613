// Charts of the analytics pages, drawn with ECharts from the JSON each page carries
// (<script type="application/json" id="analytics-charts">, Django's json_script). The
// server names every series in the user's language and gives each bar, slice or stage the
// URL of the list behind it; a click opens that list. Charts download as PNG images.
(function () {
  "use strict";

  const charts = new Map();
  const lang = document.documentElement.lang || "en";
  const locale = lang.startsWith("zh") ? "zh-CN" : "en";
  const grouped = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 });
  const PALETTE = ["#1f6feb", "#2da44e", "#bf8700", "#8250df", "#cf222e", "#1b7c83", "#e16f24", "#6e7781"];
  const FUNNEL = ["#0a3069", "#0550ae", "#0969da", "#1f6feb", "#388bfd", "#58a6ff", "#79c0ff"];
  const UP = "#cf222e";
  const DOWN = "#2da44e";

  function format(kind, value, axis) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    switch (kind) {
      case "money":
        return (value < 0 ? "-¥" : "¥") + (axis ? compact : grouped).format(Math.abs(value));
      case "percent":
        return percent.format(value);
      case "decimal":
        return decimal.format(value);
      default:
        return axis ? compact.format(value) : grouped.format(value);
    }
  }

  function baseOption() {
    return {
      color: PALETTE,
      animationDuration: 400,
      textStyle: { fontFamily: "inherit" },
      grid: { left: 12, right: 20, top: 40, bottom: 12, containLabel: true },
    };
  }

  function legend(names) {
    return { type: "plain", top: 4, left: "center", itemGap: 12, data: names, textStyle: { fontSize: 11 } };
  }

  // Room above the plot for a legend that wraps onto several lines in a narrow box.
  function legendHeight(names, width) {
    const text = names.reduce((sum, name) => sum + String(name).length * 7 + 40, 0);
    return 22 * Math.max(1, Math.ceil(text / Math.max(width - 40, 200)));
  }

  function categoryOption(spec, width) {
    const horizontal = Boolean(spec.horizontal);
    const axes = spec.axes && spec.axes.length ? spec.axes : [{ format: "count" }];
    const valueAxes = axes.map((axis, index) => ({
      type: "value",
      name: axis.name || "",
      nameTextStyle: { fontSize: 11, align: index ? "right" : "left" },
      position: index ? (horizontal ? "top" : "right") : horizontal ? "bottom" : "left",
      splitLine: { show: index === 0 },
      axisLabel: { formatter: (v) => format(axis.format, v, true), hideOverlap: true },
    }));
    // Category labels: every one shown and wrapped to its slot when they fit that way
    // (segments, aging buckets); months thin themselves out instead.
    const slot = (width - 90) / Math.max(spec.categories.length, 1);
    const wrap = !horizontal && !spec.months && slot >= 44;
    const labelWidth = Math.min(Math.max(width * 0.3, 90), spec.labelWidth || 160);
    const categoryAxis = {
      type: "category",
      data: spec.categories,
      name: spec.xName || "",
      nameLocation: "middle",
      nameGap: wrap ? 44 : 28,
      inverse: horizontal,
      axisTick: { alignWithLabel: true },
      axisLabel: horizontal
        ? { width: labelWidth, overflow: spec.wrapLabels ? "break" : "truncate", interval: 0, lineHeight: 13 }
        : wrap
          ? { interval: 0, width: slot - 6, overflow: "break", lineHeight: 13 }
          : { hideOverlap: true, rotate: spec.months ? 0 : 30, width: 110, overflow: "truncate" },
    };
    const series = spec.series.map((s) => {
      const axisIndex = s.axis || 0;
      const item = {
        name: s.name,
        type: s.type,
        data: s.data,
        barMaxWidth: 26,
        emphasis: { focus: "series" },
        cursor: s.urls && s.urls.some(Boolean) ? "pointer" : "default",
      };
      item[horizontal ? "xAxisIndex" : "yAxisIndex"] = axisIndex;
      if (s.type === "line") {
        item.symbolSize = 5;
        item.smooth = false;
        if (s.dashed) {
          item.lineStyle = { type: "dashed", width: 1.5 };
          item.symbol = "none";
        }
      }
      if (spec.signColors) {
        item.itemStyle = { color: (p) => (p.value >= 0 ? UP : DOWN) };
      } else if (s.colors) {
        item.itemStyle = { color: (p) => s.colors[p.dataIndex] || PALETTE[0] };
      }
      return item;
    });
    const formats = spec.series.map((s) => (axes[s.axis || 0] || axes[0]).format);
    const names = spec.series.map((s) => s.name);
    const option = Object.assign(baseOption(), {
      legend: spec.series.length > 1 ? legend(names) : undefined,
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        confine: true,
        formatter: (params) => {
          const list = Array.isArray(params) ? params : [params];
          if (!list.length) return "";
          const rows = list.map(
            (p) => `${p.marker}${p.seriesName}: <b>${format(formats[p.seriesIndex], p.value)}</b>`
          );
          return [list[0].axisValueLabel].concat(rows).join("<br>");
        },
      },
      series: series,
    });
    option.grid.top = spec.series.length > 1 ? legendHeight(names, width) + 18 : 16;
    if (horizontal) {
      option.xAxis = valueAxes;
      option.yAxis = categoryAxis;
      if (valueAxes.length > 1) option.grid.top += 24;
    } else {
      option.xAxis = categoryAxis;
      option.yAxis = valueAxes;
      if (spec.xName) option.grid.bottom = wrap ? 40 : 30;
    }
    return option;
  }

  function funnelOption(spec) {
    return Object.assign(baseOption(), {
      tooltip: { trigger: "item", confine: true, formatter: (p) => `${p.name}: <b>${format(spec.format, p.value)}</b>` },
      series: [
        {
          type: "funnel",
          sort: "none",
          left: 8,
          right: 8,
          top: 12,
          bottom: 12,
          minSize: "18%",
          gap: 2,
          // Counts inside; the stage names are in the table beside the funnel and the tooltip.
          label: { show: true, position: "inside", formatter: (p) => format(spec.format, p.value), fontSize: 12, fontWeight: "bold", color: "#fff" },
          itemStyle: { borderColor: "#fff", borderWidth: 1 },
          data: spec.data.map((item, i) => Object.assign({ itemStyle: { color: item.color || FUNNEL[Math.min(i, FUNNEL.length - 1)] } }, item)),
        },
      ],
    });
  }

  function pieOption(spec) {
    return Object.assign(baseOption(), {
      tooltip: { trigger: "item", confine: true, formatter: (p) => `${p.name}: <b>${format(spec.format, p.value)}</b> (${p.percent}%)` },
      legend: { type: "scroll", orient: "vertical", right: 8, top: "middle", textStyle: { fontSize: 11 } },
      series: [
        {
          type: "pie",
          radius: ["42%", "72%"],
          center: ["36%", "50%"],
          avoidLabelOverlap: true,
          label: { show: true, position: "inside", formatter: (p) => (p.percent >= 6 ? `${Math.round(p.percent)}%` : ""), fontSize: 11, color: "#fff" },
          data: spec.data,
        },
      ],
    });
  }

  function xyOption(spec, width) {
    const axis = (name, position) => ({
      type: "value",
      min: 0,
      max: 1,
      name: name,
      nameLocation: "middle",
      nameGap: position === "x" ? 26 : 40,
      axisLabel: { formatter: (v) => format(spec.format, v, true) },
    });
    return Object.assign(baseOption(), {
      legend: legend(spec.series.map((s) => s.name)),
      grid: { left: 24, right: 24, top: legendHeight(spec.series.map((s) => s.name), width) + 18, bottom: 24, containLabel: true },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: (p) => `${p.seriesName}<br>${spec.xName}: <b>${format(spec.format, p.value[0])}</b><br>${spec.yName}: <b>${format(spec.format, p.value[1])}</b>`,
      },
      xAxis: axis(spec.xName, "x"),
      yAxis: axis(spec.yName, "y"),
      series: spec.series.map((s, index) => ({
        name: s.name,
        type: "line",
        data: s.data,
        symbol: s.dashed ? "none" : "circle",
        symbolSize: 7,
        lineStyle: s.dashed ? { type: "dashed", color: "#8c959f", width: 1 } : { width: 2 },
        itemStyle: s.dashed ? { color: "#8c959f" } : { color: PALETTE[index] },
        silent: Boolean(s.dashed),
      })),
    });
  }

  function bandOption(spec, width) {
    const diff = spec.upper.map((upper, i) => (upper === null || spec.lower[i] === null ? null : upper - spec.lower[i]));
    return Object.assign(baseOption(), {
      legend: legend([spec.history.name, spec.mean.name, spec.band, spec.target.name]),
      grid: { left: 12, right: 20, top: legendHeight([spec.history.name, spec.mean.name, spec.band, spec.target.name], width) + 18, bottom: 12, containLabel: true },
      tooltip: {
        trigger: "axis",
        confine: true,
        formatter: (params) => {
          const list = Array.isArray(params) ? params : [params];
          if (!list.length) return "";
          const i = list[0].dataIndex;
          const rows = [list[0].axisValueLabel];
          if (spec.history.data[i] !== null) rows.push(`${spec.history.name}: <b>${format(spec.format, spec.history.data[i])}</b>`);
          if (spec.history.data[i] === null && spec.mean.data[i] !== null) {
            rows.push(`${spec.mean.name}: <b>${format(spec.format, spec.mean.data[i])}</b>`);
            rows.push(`${spec.band}: ${format(spec.format, spec.lower[i])} – ${format(spec.format, spec.upper[i])}`);
          }
          if (spec.target.data[i] !== null && spec.target.data[i] !== undefined) rows.push(`${spec.target.name}: <b>${format(spec.format, spec.target.data[i])}</b>`);
          return rows.join("<br>");
        },
      },
      xAxis: { type: "category", data: spec.categories, boundaryGap: false, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", axisLabel: { formatter: (v) => format(spec.format, v, true) } },
      series: [
        { name: spec.history.name, type: "line", data: spec.history.data, symbolSize: 4, itemStyle: { color: PALETTE[0] } },
        { name: "lower", type: "line", data: spec.lower, stack: "band", symbol: "none", lineStyle: { opacity: 0 }, silent: true, tooltip: { show: false } },
        { name: spec.band, type: "line", data: diff, stack: "band", symbol: "none", lineStyle: { opacity: 0 }, areaStyle: { color: "rgba(31,111,235,0.18)" }, itemStyle: { color: "rgba(31,111,235,0.35)" }, silent: true },
        { name: spec.mean.name, type: "line", data: spec.mean.data, symbolSize: 5, lineStyle: { type: "dashed", width: 2 }, itemStyle: { color: PALETTE[0] } },
        { name: spec.target.name, type: "scatter", data: spec.target.data, symbol: "diamond", symbolSize: 12, itemStyle: { color: PALETTE[4] } },
      ],
    });
  }

  const BUILDERS = { category: categoryOption, funnel: funnelOption, pie: pieOption, xy: xyOption, band: bandOption };

  function urlFor(spec, params) {
    if (params.data && typeof params.data === "object" && params.data.url) return params.data.url;
    const series = spec.series && spec.series[params.seriesIndex];
    return series && series.urls ? series.urls[params.dataIndex] : "";
  }

  function draw() {
    const source = document.getElementById("analytics-charts");
    const specs = source ? JSON.parse(source.textContent) : {};
    charts.forEach((chart, name) => {
      if (!document.body.contains(chart.getDom())) {
        chart.dispose();
        charts.delete(name);
      }
    });
    document.querySelectorAll("[data-chart]").forEach((element) => {
      const name = element.dataset.chart;
      const spec = specs[name];
      const build = spec && BUILDERS[spec.kind];
      if (!build || typeof echarts === "undefined") return;
      const existing = echarts.getInstanceByDom(element);
      if (existing) existing.dispose();
      const chart = echarts.init(element, null, { renderer: "canvas", locale: locale === "zh-CN" ? "ZH" : "EN" });
      chart.setOption(build(spec, element.clientWidth));
      chart.kehuRedraw = () => {
        chart.setOption(build(spec, element.clientWidth), { notMerge: true });
        chart.resize();
      };
      chart.on("click", (params) => {
        const url = urlFor(spec, params);
        if (url) window.location.href = url;
      });
      charts.set(name, chart);
    });
  }

  function titleOf(name) {
    const element = document.querySelector(`[data-chart="${name}"]`);
    const section = element && element.closest("section");
    const heading = section && section.querySelector("h2");
    return (heading ? heading.textContent : name).replace(/\s+/g, " ").trim();
  }

  function download(url, filename) {
    const link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  function chartImage(chart) {
    return chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
  }

  // All charts of the page in one PNG, each under its heading.
  function downloadAll() {
    const entries = Array.from(charts.entries());
    if (!entries.length) return;
    Promise.all(
      entries.map(
        ([name, chart]) =>
          new Promise((resolve) => {
            const image = new Image();
            image.onload = () => resolve({ title: titleOf(name), image: image });
            image.src = chartImage(chart);
          })
      )
    ).then((items) => {
      const title = (document.querySelector("h1") || {}).textContent || "charts";
      const heading = 56;
      const width = Math.max(...items.map((item) => item.image.width));
      const height = items.reduce((sum, item) => sum + item.image.height + heading, heading);
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, width, height);
      context.fillStyle = "#1e2530";
      context.font = "bold 32px system-ui, sans-serif";
      context.fillText(title.trim(), 24, 40);
      let y = heading;
      items.forEach((item) => {
        context.font = "bold 26px system-ui, sans-serif";
        context.fillText(item.title, 24, y + 38);
        context.drawImage(item.image, 0, y + heading);
        y += item.image.height + heading;
      });
      download(canvas.toDataURL("image/png"), `${title.trim()}.png`);
    });
  }

  document.addEventListener("click", (event) => {
    const one = event.target.closest("[data-chart-png]");
    if (one) {
      const chart = charts.get(one.dataset.chartPng);
      if (chart) download(chartImage(chart), `${titleOf(one.dataset.chartPng)}.png`);
      return;
    }
    if (event.target.closest("[data-charts-png]")) {
      downloadAll();
      return;
    }
    if (event.target.closest("[data-print]")) window.print();
  });

  // Editing a date of the period picker makes it a custom period (before htmx submits).
  document.addEventListener(
    "change",
    (event) => {
      if (!event.target.matches("[data-period-date]")) return;
      const preset = event.target.form && event.target.form.querySelector("[data-period-preset]");
      if (preset) preset.value = "custom";
    },
    true
  );

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => charts.forEach((chart) => chart.kehuRedraw()), 150);
  });
  window.addEventListener("beforeprint", () => charts.forEach((chart) => chart.resize()));
  document.addEventListener("htmx:afterSettle", draw);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
