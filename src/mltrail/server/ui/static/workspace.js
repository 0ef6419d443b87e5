/* The project workspace: chart panels beside the runs table, overlaying every visible run.

   State (panels, hidden runs) lives in the URL fragment (#ws=<json>), so a link shows the
   same thing; the table's filter, order, columns and grouping are the query string. Named
   views are kept server-side (PUT /api/v1/ui/projects/{project}/views/{name}).
   Series come from GET /api/v1/ui/projects/{project}/series: one request per panel key and
   chunk of runs, each run's downsampled min/max buckets (never a whole series). */
(function () {
  "use strict";
  const M = window.mltrail;
  const root = document.getElementById("workspace");
  const table = document.getElementById("runs");
  if (!root || !table) return;
  const project = root.dataset.project;
  const metricKeys = JSON.parse(root.dataset.metrics || "[]");
  const grid = document.getElementById("ws-grid");
  const tbody = table.tBodies[0];
  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const CHUNK = 100;          // runs per series request
  const MAX_KEYS = 10;        // keys a regex panel draws
  const LEGEND_MAX = 30;      // lines a panel's legend lists
  const XMODES = { step: "step", rel: "relative time (s)", wall: "wall time" };
  const enc = encodeURIComponent;
  let state = null;
  let panels = [];            // {spec, el, chart, plotted}
  const cache = new Map();    // key -> Map(run id -> series | null)
  let runRecords = null;      // run id -> record of /api/v1/runs (analysis panels)
  performance.mark("mltrail:workspace-start");

  // -- state and the URL ------------------------------------------------------------------

  function defaultState() {
    const user = metricKeys.filter(function (k) { return !k.startsWith("system/"); });
    return { panels: user.slice(0, 6).map(function (k) { return linePanel(k); }), hidden: [] };
  }
  /* A panel spec from a link or a saved view, with every field set to a valid value. */
  function normalize(p) {
    const m = typeof p.m === "string" ? p.m : "";
    if (p.t === "pc") return { t: "pc", m: m };
    const s = Number(p.s);
    return {
      t: "line", m: m, re: typeof p.re === "string" ? p.re : "",
      x: Object.prototype.hasOwnProperty.call(XMODES, p.x) ? p.x : "step",
      s: Number.isFinite(s) ? Math.max(0, Math.min(0.99, s)) : 0, log: p.log === true,
    };
  }
  function linePanel(metric) { return { t: "line", m: metric || "", re: "", x: "step", s: 0, log: false }; }

  function readState() {
    const m = /(?:^#|&)ws=([^&]*)/.exec(location.hash);
    if (m) {
      try {
        const s = JSON.parse(decodeURIComponent(m[1]));
        if (s && Array.isArray(s.panels)) {
          s.hidden = Array.isArray(s.hidden) ? s.hidden.map(String) : [];
          s.panels = s.panels.filter(function (p) { return p && (p.t === "line" || p.t === "pc"); }).map(normalize);
          return s;
        }
      } catch (e) { /* a mangled link: the default workspace */ }
    }
    return defaultState();
  }

  /* The default workspace has no fragment (a plain link to the project shows it). */
  function fragment() {
    const json = JSON.stringify(state);
    return json === JSON.stringify(defaultState()) ? "" : "#ws=" + enc(json);
  }

  /* Keep the fragment in the URL and in every link and form that reloads the table. */
  function writeState() {
    const hash = fragment();
    if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
    syncLinks();
    root.dataset.state = JSON.stringify(state);
  }
  function syncLinks() {
    const hash = fragment();
    ["filter-form", "columns-form"].forEach(function (id) {
      const f = document.getElementById(id);
      if (f) f.setAttribute("action", location.pathname + hash);
    });
    document.querySelectorAll("#runs thead a, a.table-reset").forEach(function (a) {
      a.setAttribute("href", a.getAttribute("href").split("#")[0] + hash);
    });
  }

  // -- runs of the table ------------------------------------------------------------------

  function rows() { return Array.prototype.filter.call(tbody.rows, function (r) { return r.dataset.run; }); }
  function allRuns() {
    return rows().map(function (r, i) {
      const link = r.querySelector("td a");
      return { id: r.dataset.run, name: link ? link.textContent : r.dataset.run.slice(0, 8), color: M.runColor(i) };
    });
  }
  function visibleRuns() {
    const hidden = new Set(state.hidden);
    return allRuns().filter(function (r) { return !hidden.has(r.id); });
  }

  /* Each row gets a colour swatch and an eye toggle (rows added later by runs.js too). */
  function decorate() {
    const hidden = new Set(state.hidden);
    rows().forEach(function (r, i) {
      let eye = r.querySelector("button.eye");
      const cell = r.cells[0];
      if (!eye) {
        eye = document.createElement("button");
        eye.type = "button";
        eye.className = "eye";
        eye.appendChild(M.el("span", "swatch"));
        cell.insertBefore(eye, cell.firstChild);
      }
      const off = hidden.has(r.dataset.run);
      eye.firstChild.style.backgroundColor = M.runColor(i);
      eye.setAttribute("aria-pressed", off ? "false" : "true");
      eye.title = off ? "hidden in the charts: show" : "shown in the charts: hide";
      eye.setAttribute("aria-label", eye.title);
      r.classList.toggle("run-hidden", off);
    });
    const n = visibleRuns().length;
    document.getElementById("ws-count").textContent = n + " of " + rows().length + " runs in the charts";
  }

  function toggleRun(id) {
    const i = state.hidden.indexOf(id);
    if (i >= 0) state.hidden.splice(i, 1); else state.hidden.push(id);
    writeState();
    decorate();
    drawAll();
  }

  tbody.addEventListener("click", function (ev) {
    const eye = ev.target.closest("button.eye");
    if (!eye) return;
    toggleRun(eye.closest("tr").dataset.run);
  });

  // -- series ------------------------------------------------------------------------------

  function num(v) {
    if (typeof v === "number") return v;
    if (v === null || v === "NaN" || v === "Infinity" || v === "-Infinity") return null;
    return Number(v);
  }

  /* Buckets per run: a panel stays ~10k points in all (1,000 for a few runs, 100 for 100). */
  function pointsFor(n) { return Math.max(50, Math.min(1000, Math.round(10000 / Math.max(1, n)))); }

  /* Series of `key` for `runs` not yet cached: one request per chunk of CHUNK runs. */
  async function fetchKey(key, runs) {
    if (!cache.has(key)) cache.set(key, new Map());
    const have = cache.get(key);
    const missing = runs.filter(function (r) { return !have.has(r.id); }).map(function (r) { return r.id; });
    const points = pointsFor(runs.length);
    const jobs = [];
    for (let i = 0; i < missing.length; i += CHUNK) {
      const ids = missing.slice(i, i + CHUNK);
      const q = new URLSearchParams({ key: key, runs: ids.join(","), points: String(points) });
      jobs.push(M.getJSON("/api/v1/ui/projects/" + enc(project) + "/series?" + q.toString()).then(function (body) {
        ids.forEach(function (id) {
          const s = body.series[id];
          have.set(id, s ? { steps: s.steps, t: s.timestamps, y: s.values.map(num) } : null);
        });
      }));
    }
    await Promise.all(jobs);
    return have;
  }

  function keysOf(spec) {
    if (spec.re) {
      let re;
      try { re = new RegExp(spec.re); } catch (e) { return { keys: [], error: "bad regex: " + e.message }; }
      const keys = metricKeys.filter(function (k) { return re.test(k); });
      return { keys: keys.slice(0, MAX_KEYS), more: Math.max(0, keys.length - MAX_KEYS) };
    }
    return { keys: spec.m ? [spec.m] : [] };
  }

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

  function xValues(spec, s) {
    if (spec.x === "wall") return s.t;
    if (spec.x === "rel") { const t0 = s.t.length ? s.t[0] : 0; return s.t.map(function (t) { return (t - t0) / 1000; }); }
    return s.steps;
  }

  function lineTraces(spec, keys, runs) {
    const out = [];
    const many = keys.length > 1;
    runs.forEach(function (run) {
      keys.forEach(function (key, ki) {
        const s = cache.get(key) && cache.get(key).get(run.id);
        if (!s) return;
        const trace = {
          // SVG lines: plotly's WebGL traces (scattergl, parcoords) failed to get a context
          // on this page in headless Chromium (plotly shows its "no WebGL" notice)
          type: "scatter", mode: s.steps.length > 2 ? "lines" : "lines+markers", x: xValues(spec, s), y: ema(s.y, Number(spec.s) || 0),
          name: many ? run.name + " \u00b7 " + key : run.name, legendgroup: run.id, meta: run.id,
          line: { width: 1.5, color: run.color, dash: ["solid", "dot", "dash", "longdash", "dashdot"][ki % 5] },
          hovertemplate: "%{y:.6g}<extra>" + (many ? key + " " : "") + "%{fullData.name}</extra>",
        };
        out.push(trace);
      });
    });
    return out;
  }

  // -- analysis: parallel coordinates ----------------------------------------------------------

  async function loadRecords(runs) {
    if (!runRecords) runRecords = new Map();
    if (runs.every(function (r) { return runRecords.has(r.id); })) return runRecords;
    const ds = table.dataset;
    let token = "";
    for (let page = 0; page < 20; page++) {
      const q = new URLSearchParams({ project: project, max_results: "1000" });
      if (ds.filter) q.set("filter", ds.filter);
      if (ds.orderBy) q.set("order_by", ds.orderBy);
      if (token) q.set("page_token", token);
      const body = await M.getJSON("/api/v1/runs?" + q.toString());
      body.runs.forEach(function (r) { runRecords.set(r.run_id, r); });
      token = body.next_page_token || "";
      if (!token || runs.every(function (r) { return runRecords.has(r.id); })) break;
    }
    return runRecords;
  }

  function dimension(label, values) {
    const numeric = values.every(function (v) { return v === null || typeof v === "number"; });
    if (numeric) {
      return { label: label, values: values.map(function (v) { return v === null ? NaN : v; }) };
    }
    const cats = Array.from(new Set(values.map(function (v) { return v === null ? "(none)" : String(v); }))).sort();
    return {
      label: label, tickvals: cats.map(function (_, i) { return i; }), ticktext: cats,
      values: values.map(function (v) { return cats.indexOf(v === null ? "(none)" : String(v)); }),
    };
  }

  /* Parallel coordinates in SVG: one axis per param that varies (at most 12) and the chosen
     metric last; one line per run, coloured by the metric (viridis). SVG rather than
     plotly's WebGL parcoords: no GL context per panel, and it draws the same in any browser. */
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  function viridis(t) {
    if (!Number.isFinite(t)) return "#9ca3af";
    const x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const a = parseInt(VIRIDIS[i].slice(1), 16), b = parseInt(VIRIDIS[i + 1].slice(1), 16), f = x - i;
    const mix = function (sh) { return Math.round(((a >> sh) & 255) * (1 - f) + ((b >> sh) & 255) * f); };
    return "rgb(" + mix(16) + "," + mix(8) + "," + mix(0) + ")";
  }

  function parcoordsModel(spec, runs, records) {
    const pairs = runs.map(function (r) { return [r, records.get(r.id)]; }).filter(function (p) { return p[1]; });
    const recs = pairs.map(function (p) { return p[1]; });
    const params = [];
    recs.forEach(function (r) { Object.keys(r.params).forEach(function (k) { if (params.indexOf(k) < 0) params.push(k); }); });
    params.sort();
    const varying = params.filter(function (k) {
      return new Set(recs.map(function (r) { return JSON.stringify(r.params[k]); })).size > 1;
    }).slice(0, 12);
    const metric = recs.map(function (r) { const m = r.metrics[spec.m]; return m ? num(m.last) : null; });
    const dims = varying.map(function (k) {
      return dimension(k, recs.map(function (r) { return k in r.params ? r.params[k] : null; }));
    });
    dims.push(dimension(spec.m, metric));
    return { runs: pairs.map(function (p) { return p[0]; }), dims: dims };
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawParcoords(el, model) {
    const w = Math.max(320, el.clientWidth || 600), h = 280, top = 34, bottom = 24, left = 50, right = 50;
    const n = model.dims.length;
    const xAt = function (i) { return n === 1 ? w / 2 : left + i * (w - left - right) / (n - 1); };
    const scales = model.dims.map(function (d) {
      const finite = d.values.filter(Number.isFinite);
      let lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
      if (!finite.length) { lo = 0; hi = 1; }
      if (lo === hi) { lo -= 0.5; hi += 0.5; }
      return function (v) { return Number.isFinite(v) ? h - bottom - (v - lo) / (hi - lo) * (h - top - bottom) : null; };
    });
    const metric = model.dims[n - 1].values.filter(Number.isFinite);
    const mlo = Math.min.apply(null, metric), mhi = Math.max.apply(null, metric);
    const root = svg("svg", { class: "parcoords", width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img" });
    const lines = svg("g", { class: "pc-lines" });
    model.runs.forEach(function (run, r) {
      const pts = [];
      model.dims.forEach(function (d, i) {
        const y = scales[i](d.values[r]);
        if (y !== null) pts.push(xAt(i).toFixed(1) + "," + y.toFixed(1));
      });
      const m = model.dims[n - 1].values[r];
      const line = svg("polyline", { points: pts.join(" "), stroke: viridis(mhi > mlo ? (m - mlo) / (mhi - mlo) : 0.5), "data-run": run.id });
      line.appendChild(svg("title", {}, run.name + ": " + model.dims[n - 1].label + " = " + M.fmtNum(Number.isFinite(m) ? m : null)));
      lines.appendChild(line);
    });
    root.appendChild(lines);
    model.dims.forEach(function (d, i) {
      const x = xAt(i), g = svg("g", { class: "pc-axis" + (i === n - 1 ? " pc-metric" : "") });
      g.appendChild(svg("line", { x1: x, x2: x, y1: top, y2: h - bottom }));
      g.appendChild(svg("text", { x: x, y: top - 14, "text-anchor": "middle", class: "pc-label" }, d.label));
      if (d.ticktext) {
        d.ticktext.forEach(function (t, k) { g.appendChild(svg("text", { x: x + 4, y: scales[i](k) + 4 }, t)); });
      } else {
        const finite = d.values.filter(Number.isFinite);
        if (finite.length) {
          const lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
          g.appendChild(svg("text", { x: x + 4, y: h - bottom + 14 }, M.fmtNum(lo)));
          g.appendChild(svg("text", { x: x + 4, y: top - 2 }, M.fmtNum(hi)));
        }
      }
      root.appendChild(g);
    });
    el.replaceChildren(root);
  }

  // -- panels ----------------------------------------------------------------------------------

  function option(value, label, selected) {
    const o = document.createElement("option");
    o.value = value; o.textContent = label; o.selected = !!selected;
    return o;
  }

  function metricSelect(cls, value) {
    const sel = document.createElement("select");
    sel.className = cls;
    sel.appendChild(option("", "(choose a metric)", !value));
    metricKeys.forEach(function (k) { sel.appendChild(option(k, k, k === value)); });
    return sel;
  }

  function label(text, control) {
    const l = M.el("label", "", text + " ");
    l.appendChild(control);
    return l;
  }

  function configForm(p) {
    const spec = p.spec, form = document.createElement("form");
    form.className = "ws-config";
    form.hidden = true;
    form.appendChild(label("metric", metricSelect("cfg-metric", spec.m)));
    if (spec.t === "line") {
      const re = document.createElement("input");
      re.className = "cfg-regex"; re.type = "text"; re.value = spec.re || ""; re.placeholder = "^val/.*";
      re.spellcheck = false;
      form.appendChild(label("or regex", re));
      const x = document.createElement("select");
      x.className = "cfg-x";
      Object.keys(XMODES).forEach(function (k) { x.appendChild(option(k, XMODES[k], k === spec.x)); });
      form.appendChild(label("x axis", x));
      const s = document.createElement("input");
      s.className = "cfg-smooth"; s.type = "range"; s.min = "0"; s.max = "0.99"; s.step = "0.01"; s.value = String(spec.s || 0);
      form.appendChild(label("smoothing", s));
      const log = document.createElement("input");
      log.className = "cfg-log"; log.type = "checkbox"; log.checked = !!spec.log;
      form.appendChild(label("log scale", log));
    }
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
    form.addEventListener("change", function () { applyConfig(p, form); });
    form.addEventListener("input", function (ev) {
      if (ev.target.classList.contains("cfg-smooth")) applyConfig(p, form);
    });
    return form;
  }

  function applyConfig(p, form) {
    const spec = p.spec;
    spec.m = form.querySelector(".cfg-metric").value;
    if (spec.t === "line") {
      spec.re = form.querySelector(".cfg-regex").value.trim();
      spec.x = form.querySelector(".cfg-x").value;
      spec.s = Number(form.querySelector(".cfg-smooth").value);
      spec.log = form.querySelector(".cfg-log").checked;
    }
    writeState();
    title(p);
    draw(p);
  }

  function title(p) {
    const s = p.spec;
    let text = s.t === "pc" ? "parallel coordinates \u2192 " + (s.m || "?") : (s.re ? "/" + s.re + "/" : s.m || "(no metric)");
    if (s.t === "line" && s.x !== "step") text += " \u00b7 " + XMODES[s.x];
    p.el.querySelector(".ws-title").textContent = text;
  }

  function buildPanel(spec) {
    const fig = M.el("figure", "chart-box ws-panel");
    fig.dataset.kind = spec.t;
    const cap = document.createElement("figcaption");
    cap.appendChild(M.el("span", "ws-title"));
    const edit = M.el("button", "link ws-edit", "configure");
    edit.type = "button";
    const remove = M.el("button", "link ws-remove", "\u00d7");
    remove.type = "button"; remove.title = "remove panel"; remove.setAttribute("aria-label", "remove panel");
    cap.appendChild(edit); cap.appendChild(remove);
    fig.appendChild(cap);
    const p = { spec: spec, el: fig, chart: M.el("div", "chart"), plotted: false };
    fig.appendChild(configForm(p));
    fig.appendChild(p.chart);
    edit.addEventListener("click", function () {
      const f = fig.querySelector(".ws-config"); f.hidden = !f.hidden;
    });
    remove.addEventListener("click", function () {
      const i = panels.indexOf(p);
      if (i < 0) return;
      panels.splice(i, 1);
      state.panels.splice(state.panels.indexOf(spec), 1);
      if (p.plotted && window.Plotly) window.Plotly.purge(p.chart);
      fig.remove();
      writeState();
      root.dataset.panels = String(panels.length);
    });
    title(p);
    return p;
  }

  function message(p, text) {
    if (p.plotted && window.Plotly) window.Plotly.purge(p.chart);
    p.plotted = false;
    p.chart.replaceChildren(M.el("p", "empty", text));
    p.chart.dataset.state = "empty";
    p.chart.dataset.traces = "0";
  }

  async function draw(p) {
    const spec = p.spec, el = p.chart, runs = visibleRuns();
    const ticket = (p.ticket || 0) + 1;
    p.ticket = ticket;
    el.dataset.state = "loading";
    try {
      let traces, layout;
      if (!runs.length) { message(p, "No run shown: show runs in the table."); return; }
      if (spec.t === "pc") {
        if (!spec.m) { message(p, "Choose a metric (configure)."); return; }
        const model = parcoordsModel(spec, runs, await loadRecords(runs));
        if (ticket !== p.ticket) return;
        if (p.plotted && window.Plotly) window.Plotly.purge(el);
        p.plotted = false;
        drawParcoords(el, model);
        el.dataset.dims = JSON.stringify(model.dims.map(function (d) { return d.label; }));
        el.dataset.runs = JSON.stringify(model.runs.map(function (r) { return r.id; }));
        el.dataset.traces = String(model.runs.length);
        el.dataset.state = "drawn";
        return;
      } else {
        const found = keysOf(spec);
        if (found.error) { message(p, found.error); return; }
        if (!found.keys.length) { message(p, spec.re ? "No metric matches /" + spec.re + "/." : "Choose a metric (configure)."); return; }
        await Promise.all(found.keys.map(function (k) { return fetchKey(k, runs); }));
        traces = lineTraces(spec, found.keys, runs);
        layout = {
          // a legend up to LEGEND_MAX lines; past that the table's swatches are the legend
          // (a plotly legend of 100 entries costs more to draw than the lines) and hover
          // names each line
          margin: { l: 48, r: 8, t: 6, b: 28 }, height: 260, hovermode: "closest",
          showlegend: traces.length <= LEGEND_MAX,
          legend: { font: { size: 10 }, itemclick: false, itemdoubleclick: false },
          xaxis: { type: spec.x === "wall" ? "date" : "linear", automargin: true, title: { text: spec.x === "step" ? "" : XMODES[spec.x], font: { size: 10 } } },
          yaxis: { type: spec.log ? "log" : "linear", automargin: true },
          uirevision: spec.x + (spec.log ? "log" : ""),
        };
        if (found.more) el.dataset.moreKeys = String(found.more);
      }
      await plotlyReady();
      if (ticket !== p.ticket) return;
      if (!p.plotted) el.replaceChildren();
      await window.Plotly.react(el, traces, M.themed(layout), CONFIG);
      if (!p.plotted) {
        p.plotted = true;
        el.on("plotly_legendclick", function (ev) {
          const id = ev.data[ev.curveNumber] && ev.data[ev.curveNumber].meta;
          if (id) toggleRun(id);
          return false;
        });
      }
      el.dataset.traces = String(traces.length);
      el.dataset.runs = JSON.stringify(traces.map(function (t) { return t.meta; }).filter(function (m) { return typeof m === "string"; }));
      el.dataset.state = "drawn";
      performance.mark("mltrail:panel-drawn");
    } catch (e) {
      if (ticket !== p.ticket) return;
      message(p, "could not draw: " + e.message);
      el.dataset.state = "error";
    } finally {
      if (ticket === p.ticket) el.dispatchEvent(new CustomEvent("mltrail:drawn", { bubbles: true }));
    }
  }

  function drawAll() { return Promise.all(panels.map(draw)); }

  function render() {
    panels.forEach(function (p) { if (p.plotted && window.Plotly) window.Plotly.purge(p.chart); });
    grid.replaceChildren();
    panels = state.panels.map(buildPanel);
    panels.forEach(function (p) { grid.appendChild(p.el); });
    root.dataset.panels = String(panels.length);
    decorate();
    return drawAll();
  }

  // -- plotly.js: loaded once the workspace starts, not on the table's critical path ---------

  let plotly = null;
  function plotlyReady() {
    if (window.Plotly) return Promise.resolve();
    if (!plotly) {
      plotly = new Promise(function (resolve, reject) {
        const tag = document.createElement("script");
        tag.src = root.dataset.plotly;
        tag.onload = function () { performance.mark("mltrail:plotly-loaded"); resolve(); };
        tag.onerror = function () { reject(new Error("plotly.js did not load")); };
        document.head.appendChild(tag);
      });
    }
    return plotly;
  }

  // -- toolbar: add panels, saved views --------------------------------------------------------

  document.getElementById("ws-add-line").addEventListener("click", function () {
    const user = metricKeys.filter(function (k) { return !k.startsWith("system/"); });
    addPanel(linePanel(user[0] || metricKeys[0] || ""));
  });
  document.getElementById("ws-add-pc").addEventListener("click", function () {
    const user = metricKeys.filter(function (k) { return !k.startsWith("system/"); });
    addPanel({ t: "pc", m: user[0] || "" });
  });
  function addPanel(spec) {
    state.panels.push(spec);
    const p = buildPanel(spec);
    panels.push(p);
    grid.appendChild(p.el);
    root.dataset.panels = String(panels.length);
    writeState();
    p.el.querySelector(".ws-config").hidden = false;
    return draw(p);
  }

  const viewSel = document.getElementById("ws-views");
  const viewName = document.getElementById("ws-view-name");
  const viewNote = document.getElementById("ws-view-note");
  const viewsUrl = "/api/v1/ui/projects/" + enc(project) + "/views";

  async function listViews(selected) {
    try {
      const views = await M.getJSON(viewsUrl);
      viewSel.replaceChildren(option("", "(saved views)", !selected));
      views.forEach(function (v) { viewSel.appendChild(option(v.name, v.name, v.name === selected)); });
      root.dataset.views = String(views.length);
    } catch (e) { viewNote.textContent = "views: " + e.message; }
  }

  document.getElementById("ws-save").addEventListener("click", async function () {
    const name = viewName.value.trim();
    if (!name) { viewNote.textContent = "name the view first"; return; }
    const spec = { ws: state, query: location.search };
    try {
      await M.getJSON(viewsUrl + "/" + enc(name), {
        method: "PUT", body: JSON.stringify({ spec: spec }),
        headers: { Accept: "application/json", "Content-Type": "application/json" },
      });
      viewNote.textContent = "saved \u201c" + name + "\u201d";
      await listViews(name);
    } catch (e) { viewNote.textContent = "could not save: " + e.message; }
  });

  viewSel.addEventListener("change", async function () {
    const name = viewSel.value;
    if (!name) return;
    try {
      const view = await M.getJSON(viewsUrl + "/" + enc(name));
      viewName.value = name;
      const query = typeof view.spec.query === "string" ? view.spec.query : "";
      const target = location.pathname + query + "#ws=" + enc(JSON.stringify(view.spec.ws || defaultState()));
      if (query === location.search) { history.replaceState(null, "", target); start(); }
      else location.assign(target);
    } catch (e) { viewNote.textContent = "could not open: " + e.message; }
  });

  document.getElementById("ws-delete").addEventListener("click", async function () {
    const name = viewSel.value;
    if (!name) { viewNote.textContent = "choose a saved view to delete"; return; }
    try {
      const resp = await fetch(viewsUrl + "/" + enc(name), { method: "DELETE", credentials: "same-origin" });
      if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
      viewNote.textContent = "deleted \u201c" + name + "\u201d";
      await listViews("");
    } catch (e) { viewNote.textContent = "could not delete: " + e.message; }
  });

  // rows added by "load more" join the charts
  new MutationObserver(function (muts) {
    if (!muts.some(function (m) { return Array.prototype.some.call(m.addedNodes, function (n) { return n.dataset && n.dataset.run && !n.querySelector("button.eye"); }); })) return;
    decorate();
    drawAll();
  }).observe(tbody, { childList: true });

  window.addEventListener("hashchange", function () { start(); });
  document.addEventListener("mltrail:theme", function () { if (state) drawAll(); });

  function start() {
    state = readState();
    writeState();
    const t0 = performance.now();
    return render().then(function () {
      const body = document.body.dataset;
      body.wsInteractiveMs = String(Math.round(performance.now()));
      body.wsDrawMs = String(Math.round(performance.now() - t0));
      root.dataset.ready = "1";
    });
  }

  listViews("");
  start();
})();
