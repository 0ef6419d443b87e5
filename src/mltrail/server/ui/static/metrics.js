/* The key browser of a run with many metric keys: a key search (substring, or a glob with
   * ? [..]), the keys grouped by prefix, a summary table of the matches, and at most
   `data-cap` chart panels at a time ("show N more" adds as many again). Panels fetch their
   series only when near the viewport (charts.js, lazy groups). */
(function () {
  "use strict";
  const M = window.mltrail;
  const root = document.getElementById("metric-browser");
  if (!root) return;
  const ROWS = 50;  // summary rows shown at once
  const cap = Math.max(1, Number(root.dataset.cap) || 12);
  const rows = JSON.parse(document.getElementById("metric-keys").textContent || "[]");
  const lower = rows.map(function (r) { return String(r[0]).toLowerCase(); });
  const search = document.getElementById("metric-search");
  const match = document.getElementById("metric-match");
  const tbody = document.querySelector("#metric-summary tbody");
  const rowsMore = document.getElementById("metric-rows-more");
  const grid = document.getElementById("metric-charts");
  const more = document.getElementById("metric-more");
  const shownNote = document.getElementById("metric-shown");
  const charts = grid.closest(".charts").mltrailCharts;
  let matches = [], shown = 0;

  function globRegex(glob) {
    let out = "";
    for (let i = 0; i < glob.length; i++) {
      const ch = glob[i];
      if (ch === "*") out += ".*";
      else if (ch === "?") out += ".";
      else if (ch === "[") {
        const end = glob.indexOf("]", i + 1);
        if (end > i + 1) {
          let body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
          if (body[0] === "!") body = "^" + body.slice(1);
          out += "[" + body + "]";
          i = end;
        } else out += "\\[";
      } else out += ch.replace(/[.+^${}()|\\\]]/g, "\\$&");
    }
    return new RegExp("^" + out + "$", "i");
  }

  /* Indices of the keys matching q: a glob if it has * ? or [, else a substring (any case).
     A key equal to q comes first. */
  function find(q) {
    q = q.trim();
    const all = [];
    if (!q) { for (let i = 0; i < rows.length; i++) all.push(i); return all; }
    const needle = q.toLowerCase();
    let exact = -1;
    if (/[*?[]/.test(q)) {
      let re;
      try { re = globRegex(q); } catch (e) { return all; }
      for (let i = 0; i < rows.length; i++) if (re.test(rows[i][0])) all.push(i);
    } else {
      for (let i = 0; i < lower.length; i++) {
        if (lower[i].indexOf(needle) >= 0) { all.push(i); if (lower[i] === needle) exact = all.length - 1; }
      }
    }
    if (exact > 0) all.unshift(all.splice(exact, 1)[0]);
    return all;
  }

  function summary() {
    const frag = document.createDocumentFragment();
    matches.slice(0, ROWS).forEach(function (i) {
      const r = rows[i], tr = document.createElement("tr");
      tr.appendChild(M.el("td", "", r[0]));
      for (let k = 1; k < 6; k++) tr.appendChild(M.el("td", "num", String(r[k])));
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
    const rest = matches.length - Math.min(ROWS, matches.length);
    rowsMore.hidden = rest <= 0;
    rowsMore.textContent = rest > 0 ? rest + " more keys match: narrow the search to list them" : "";
  }

  function addPanels(n) {
    const frag = document.createDocumentFragment();
    const added = [];
    matches.slice(shown, shown + n).forEach(function (i) {
      const key = rows[i][0];
      const fig = M.el("figure", "chart-box");
      fig.appendChild(M.el("figcaption", "", key));
      const el = M.el("div", "chart");
      el.dataset.key = key;
      fig.appendChild(el);
      frag.appendChild(fig);
      added.push(el);
    });
    grid.appendChild(frag);
    added.forEach(function (el) { charts.add(el); });
    shown += added.length;
    const rest = matches.length - shown;
    more.hidden = rest <= 0;
    more.textContent = rest > 0 ? "show " + Math.min(cap, rest) + " more (" + rest + " not shown)" : "";
    shownNote.textContent = matches.length ? shown + " of " + matches.length + " charts" : "";
  }

  function render() {
    const q = search.value;
    matches = find(q);
    root.dataset.query = q;
    root.dataset.matches = String(matches.length);
    match.textContent = q.trim()
      ? matches.length + " of " + rows.length + " keys match"
      : rows.length + " keys";
    summary();
    charts.clear();
    grid.replaceChildren();
    shown = 0;
    if (!matches.length) grid.appendChild(M.el("p", "empty", "No key matches \u201c" + q.trim() + "\u201d."));
    addPanels(cap);
  }

  let timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(render, 60);
  });
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(timer); render(); }
  });
  more.addEventListener("click", function () { addPanels(cap); });
  document.getElementById("metric-groups").addEventListener("click", function (ev) {
    const btn = ev.target.closest("button.key-group");
    if (!btn) return;
    search.value = btn.dataset.prefix.replace(/[*?[]/g, "[$&]") + "*";
    clearTimeout(timer);
    render();
  });

  /* On load: firstPanelsVisibleMs when the panels that started show their data (the SVG
     preview drawn before plotly.js has loaded, or the chart), firstPanelsMs when plotly has
     drawn them all (zoom, hover). */
  const body = document.body.dataset;
  const watch = new MutationObserver(function () {
    const states = Array.prototype.map.call(grid.querySelectorAll(".chart[data-state]"),
      function (el) { return el.dataset.state; });
    if (!states.length) return;
    const done = function (s) { return s === "drawn" || s === "error"; };
    if (!body.firstPanelsVisibleMs && states.every(function (s) { return done(s) || s === "preview"; })) {
      body.firstPanelsVisibleMs = String(Math.round(performance.now()));
    }
    if (states.every(done)) {
      body.firstPanelsMs = String(Math.round(performance.now()));
      watch.disconnect();
    }
  });
  watch.observe(grid, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
  if (search.value) search.value = "";  // not what the browser restored on a reload
  render();
  document.body.dataset.keysReadyMs = String(Math.round(performance.now()));
})();
