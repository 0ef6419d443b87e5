/* Metric charts (plotly.js): downsampled series with min/max bands, x by step or time,
   EMA smoothing, log scale, and zoom that asks the server for finer buckets. */
(function () {
  "use strict";
  const M = window.mltrail;
  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function num(v) {
    if (typeof v === "number") return v;
    if (v === "NaN" || v === null) return null;
    if (v === "Infinity" || v === "-Infinity") return null;  // off any axis
    return Number(v);
  }

  function rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  /* Debiased exponential moving average (as TensorBoard smooths); gaps stay gaps. */
  function ema(values, weight) {
    if (!weight) return values;
    let last = 0, n = 0;
    return values.map(function (v) {
      if (v === null || !Number.isFinite(v)) return v;
      last = last * weight + (1 - weight) * v;
      n += 1;
      return last / (1 - Math.pow(weight, n));
    });
  }

  function parseSeries(body) {
    return {
      steps: body.steps, timestamps: body.timestamps,
      values: body.values.map(num),
      min: body.min ? body.min.map(num) : null,
      max: body.max ? body.max.map(num) : null,
      downsampled: !!body.downsampled,
    };
  }

  /* Axis units (a step or a plotly date string) back to a step range, using the data. */
  function stepRange(chart, r0, r1) {
    if (chart.group.xmode === "step") return [Math.max(0, Math.floor(r0)), Math.ceil(r1)];
    const t = function (v) { return typeof v === "number" ? v : Date.parse(String(v).replace(" ", "T") + "Z"); };
    const t0 = t(r0), t1 = t(r1);
    let lo = Infinity, hi = -Infinity;
    chart.data.forEach(function (s) {
      if (!s) return;
      for (let i = 0; i < s.steps.length; i++) {
        if (s.timestamps[i] >= t0 && s.timestamps[i] <= t1) {
          lo = Math.min(lo, s.steps[i]); hi = Math.max(hi, s.steps[i]);
        }
      }
    });
    return Number.isFinite(lo) ? [lo, hi] : null;
  }

  /* The x values of a series: its steps, or its timestamps (ms) on a time axis. */
  function xOf(chart, s) { return chart.group.xmode === "time" ? s.timestamps : s.steps; }

  function traces(chart) {
    const g = chart.group, out = [];
    chart.data.forEach(function (s, i) {
      if (!s) return;
      const color = M.runColor(i);
      const name = g.runs[i].name || g.runs[i].id.slice(0, 8);
      const x = xOf(chart, s);
      if (s.downsampled && s.min && s.max && g.runs.length <= 10) {  // bands: a few runs only
        out.push({ x: x, y: s.min, mode: "lines", line: { width: 0, color: color }, hoverinfo: "skip", showlegend: false, name: name + " min" });
        out.push({ x: x, y: s.max, mode: "lines", line: { width: 0, color: color }, fill: "tonexty",
          fillcolor: rgba(color, g.runs.length > 1 ? 0.1 : 0.18), hoverinfo: "skip", showlegend: false, name: name + " max" });
      }
      if (g.smoothing > 0) {
        out.push({ x: x, y: s.values, mode: "lines", line: { width: 1, color: rgba(color, 0.3) }, hoverinfo: "skip", showlegend: false, name: name + " raw" });
      }
      out.push({ x: x, y: ema(s.values, g.smoothing), mode: "lines", line: { width: 1.6, color: color }, name: name, meta: g.runs[i].id });
    });
    return out;
  }

  function layout(chart) {
    const g = chart.group;
    const xaxis = { type: g.xmode === "time" ? "date" : "linear", automargin: true };
    if (chart.range) { xaxis.range = chart.range.slice(); xaxis.autorange = false; }
    return {
      margin: { l: 48, r: 8, t: 6, b: 28 }, height: 250, hovermode: "closest",
      // a legend wherever runs are overlaid (compare); one run needs none
      showlegend: g.runs.length > 1, legend: { font: { size: 10 } },
      xaxis: xaxis, yaxis: { type: g.log ? "log" : "linear", automargin: true },
      uirevision: g.xmode + (g.log ? "log" : ""),
    };
  }

  async function draw(chart) {
    const el = chart.el;
    chart.drawing = true;
    try {
      if (chart.plotted) await window.Plotly.react(el, traces(chart), M.themed(layout(chart)), CONFIG);
      else {
        el.replaceChildren();
        await window.Plotly.newPlot(el, traces(chart), M.themed(layout(chart)), CONFIG);
        chart.plotted = true;
        el.on("plotly_relayout", function (ev) { onRelayout(chart, ev); });
      }
    } finally { chart.drawing = false; }
    let points = 0;
    chart.data.forEach(function (s) { if (s) points += s.steps.length; });
    el.dataset.points = String(points);
    el.dataset.state = "drawn";
    el.dispatchEvent(new CustomEvent("mltrail:drawn", { bubbles: true }));
  }

  /* A lazy group (a run with many keys) asks the UI's series route, which does not re-read
     the run (10^4 metric summaries) for each panel's visibility check. */
  function seriesUrl(runId, key, points, steps, lazy) {
    const q = new URLSearchParams({ key: key, points: String(points) });
    if (steps) { q.set("step_min", String(steps[0])); q.set("step_max", String(steps[1])); }
    return (lazy ? "/api/v1/ui/runs/" : "/api/v1/runs/") + encodeURIComponent(runId) + "/series?" + q.toString();
  }

  async function load(chart, steps) {
    const el = chart.el, g = chart.group;
    let points = Math.max(200, Math.min(2000, Math.round(el.clientWidth || 500)));
    // many runs (compare): fewer buckets each, so a chart stays a few 10k points in all
    if (g.runs.length > 10) points = Math.max(50, Math.round(points * 10 / g.runs.length));
    el.dataset.requests = String(Number(el.dataset.requests || 0) + g.runs.length);
    const results = await Promise.all(g.runs.map(function (run) {
      return M.getJSON(seriesUrl(run.id, chart.key, points, steps, g.lazy)).then(parseSeries, function (e) {
        if (e.status === 404) return null;  // this run did not log the key
        throw e;
      });
    }));
    chart.data = results;
  }

  /* A static SVG of the data (band and line), drawn while plotly.js is still loading. */
  const SVG = "http://www.w3.org/2000/svg";
  function preview(chart) {
    const el = chart.el, w = el.clientWidth || 400, h = el.clientHeight || 250, pad = 8;
    let lo = Infinity, hi = -Infinity, x0 = Infinity, x1 = -Infinity;
    chart.data.forEach(function (s) {
      if (!s) return;
      const ys = (s.min || s.values).concat(s.max || s.values);
      ys.forEach(function (y) { if (y !== null && Number.isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); } });
      const xs = xOf(chart, s);
      if (xs.length) { x0 = Math.min(x0, xs[0]); x1 = Math.max(x1, xs[xs.length - 1]); }
    });
    if (!Number.isFinite(lo) || !Number.isFinite(x0)) return;
    const sx = function (x) { return pad + (x - x0) / ((x1 - x0) || 1) * (w - 2 * pad); };
    const sy = function (y) { return h - pad - (y - lo) / ((hi - lo) || 1) * (h - 2 * pad); };
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "preview");
    svg.setAttribute("width", String(w));
    svg.setAttribute("height", String(h));
    chart.data.forEach(function (s, i) {
      if (!s) return;
      const color = M.runColor(i);
      const pts = function (ys) {
        const out = [];
        xOf(chart, s).forEach(function (x, k) { if (ys[k] !== null && Number.isFinite(ys[k])) out.push(sx(x).toFixed(1) + "," + sy(ys[k]).toFixed(1)); });
        return out;
      };
      if (s.min && s.max) {
        const band = document.createElementNS(SVG, "polygon");
        band.setAttribute("points", pts(s.max).concat(pts(s.min).reverse()).join(" "));
        band.setAttribute("fill", rgba(color, 0.18));
        svg.appendChild(band);
      }
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", pts(s.values).join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", color);
      line.setAttribute("stroke-width", "1.5");
      svg.appendChild(line);
    });
    el.replaceChildren(svg);
    el.dataset.state = "preview";
  }

  /* plotly.js (4.8 MB) runs as one long task: it is loaded (preloaded, so already
     downloaded) only once the data has arrived and the SVG previews are painted. */
  let plotlyLoaded;
  const plotlyReady = new Promise(function (resolve) { plotlyLoaded = resolve; });
  function loadPlotly() {
    if (window.Plotly) { plotlyLoaded(); return; }
    const link = document.getElementById("plotly-js");
    const tag = document.createElement("script");
    tag.src = link ? link.href : "";
    tag.onload = plotlyLoaded;
    tag.onerror = plotlyLoaded;
    document.head.appendChild(tag);
  }

  async function refresh(chart, steps) {
    chart.el.dataset.state = "loading";  // "drawn" again only once this range is on screen
    try {
      const loading = load(chart, steps);
      if (chart.onLoaded) {  // a lazy chart: its promise exists before it starts
        const resolve = chart.onLoaded;
        chart.onLoaded = null;
        loading.then(resolve, function () { resolve(null); });
      }
      if (!chart.loaded) chart.loaded = loading.catch(function () { return null; });
      await loading;
      if (chart.dropped) return;
      if (!window.Plotly && !chart.plotted) preview(chart);
      await plotlyReady;
      if (chart.dropped) return;
      if (!window.Plotly) throw new Error("plotly.js did not load");
      await draw(chart);
    } catch (e) {
      chart.el.dataset.state = "error";
      chart.el.replaceChildren(M.el("p", "chart-error", "could not load " + chart.key + ": " + e.message));
    }
  }

  function onRelayout(chart, ev) {
    if (chart.drawing) return;
    if (ev["xaxis.autorange"]) {
      chart.range = null;
      chart.el.dataset.zoomed = "";
      refresh(chart, null);
      return;
    }
    const r0 = ev["xaxis.range[0]"] !== undefined ? ev["xaxis.range[0]"] : (ev["xaxis.range"] || [])[0];
    const r1 = ev["xaxis.range[1]"] !== undefined ? ev["xaxis.range[1]"] : (ev["xaxis.range"] || [])[1];
    if (r0 === undefined || r1 === undefined) return;
    const steps = stepRange(chart, r0, r1);
    if (!steps) return;
    chart.range = [r0, r1];
    chart.el.dataset.zoomed = steps[0] + "-" + steps[1];
    refresh(chart, steps);
  }

  /* Lazy groups (the key browser of a wide run): a chart fetches its series only once it
     comes near the viewport; plotly.js is loaded once the first lazy chart has its data. */
  let plotlyScheduled = false;
  function schedulePlotly() {
    if (plotlyScheduled) return;
    plotlyScheduled = true;
    requestAnimationFrame(function () { setTimeout(loadPlotly, 0); });
  }
  const nearView = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      nearView.unobserve(entry.target);
      const chart = entry.target.mltrailChart;
      if (chart && !chart.started) startLazy(chart);
    });
  }, { rootMargin: "100px 0px" }) : null;

  /* plotly.js compiles in one long task: it waits until every panel that started has its
     data (and SVG preview), as the eager charts do, not just the first one. */
  let lazyPending = 0;
  function startLazy(chart) {
    chart.started = true;
    lazyPending += 1;
    const loading = refresh(chart, null);
    chart.loaded.then(function () {
      lazyPending -= 1;
      if (!lazyPending) schedulePlotly();
    });
    return loading;
  }

  function addLazy(group, el) {
    const chart = { el: el, key: el.dataset.key, group: group, data: [], range: null, plotted: false };
    chart.loaded = new Promise(function (resolve) { chart.onLoaded = resolve; });
    el.mltrailChart = chart;
    group.charts.push(chart);
    if (nearView) nearView.observe(el); else startLazy(chart);
    return chart;
  }

  function clearLazy(group) {
    group.charts.forEach(function (c) {
      if (nearView) nearView.unobserve(c.el);
      if (c.plotted && window.Plotly) window.Plotly.purge(c.el);
      c.el.mltrailChart = null;
      c.dropped = true;  // a refresh still in flight draws nothing
    });
    group.charts = [];
  }

  function setup(container) {
    const group = {
      runs: JSON.parse(container.dataset.runs || "[]"), smoothing: 0, log: false, charts: [],
      xmode: container.dataset.x === "time" ? "time" : "step",  // system metrics: time
    };
    const lazy = container.dataset.lazy === "1";
    group.lazy = lazy;
    if (lazy) {
      container.mltrailCharts = {
        add: function (el) { return addLazy(group, el); },
        clear: function () { clearLazy(group); },
      };
    } else container.querySelectorAll(".chart").forEach(function (el) {
      const chart = { el: el, key: el.dataset.key, group: group, data: [], range: null, plotted: false };
      el.mltrailChart = chart;  // redrawn when the theme changes
      group.charts.push(chart);
    });
    const redrawAll = function () {
      group.charts.forEach(function (c) { if (c.plotted) draw(c); });
    };
    const xSel = container.querySelector(".ctl-x");
    const smooth = container.querySelector(".ctl-smooth");
    const smoothOut = container.querySelector(".ctl-smooth-out");
    const logBox = container.querySelector(".ctl-log");
    if (xSel) xSel.value = group.xmode;  // not what the browser restored on a reload
    if (xSel) xSel.addEventListener("change", function () {
      group.xmode = xSel.value;
      group.charts.forEach(function (c) { c.range = null; });
      redrawAll();
    });
    if (smooth) smooth.addEventListener("input", function () {
      group.smoothing = Number(smooth.value);
      if (smoothOut) smoothOut.textContent = smooth.value;
      redrawAll();
    });
    if (logBox) logBox.addEventListener("change", function () { group.log = logBox.checked; redrawAll(); });
    if (lazy) return [];
    return group.charts.map(function (c) { return { chart: c, done: refresh(c, null) }; });
  }

  document.addEventListener("mltrail:theme", function () {
    document.querySelectorAll(".chart").forEach(function (el) {
      const c = el.mltrailChart;
      if (c && c.plotted) draw(c);
    });
  });

  // Runs as soon as the page is parsed, before plotly.js executes: the series requests
  // go out while the browser is still compiling plotly.
  performance.mark("mltrail:charts-start");
  const started = [].concat.apply([], Array.prototype.map.call(document.querySelectorAll(".charts"), setup));
  const onPreview = function () {
    if (started.every(function (s) { return s.chart.el.dataset.state; }) && !document.body.dataset.chartsVisibleMs) {
      document.body.dataset.chartsVisibleMs = String(Math.round(performance.now()));
    }
  };
  new MutationObserver(onPreview).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  if (started.length) {
    Promise.all(started.map(function (s) { return s.chart.loaded; })).then(function () {
      requestAnimationFrame(function () { setTimeout(loadPlotly, 0); });
    });
  }
  Promise.all(started.map(function (s) { return s.done; })).then(function () {
    document.body.dataset.chartsMs = String(Math.round(performance.now()));
    document.body.dataset.charts = "drawn";
  });
})();
