/* The runs table: more pages from GET /api/v1/runs, grouping, picking runs to compare. */
(function () {
  "use strict";
  const M = window.mltrail;
  const table = document.getElementById("runs");
  if (!table) return;
  const tbody = table.tBodies[0];
  const ds = table.dataset;
  const cols = JSON.parse(ds.cols || "[]");
  const group = ds.group || "";
  const moreBtn = document.getElementById("load-more");
  const shown = document.getElementById("shown");
  let nextToken = ds.nextToken || "";
  let loading = false;

  function cellValue(run, col) {
    const dot = col.indexOf(".");
    const kind = col.slice(0, dot), key = col.slice(dot + 1);
    if (kind === "params") return key in run.params ? M.fmtValue(run.params[key]) : "";
    if (kind === "metrics") return run.metrics[key] ? M.fmtNum(run.metrics[key].last) : "";
    return run.tags[key] !== undefined ? run.tags[key] : "";
  }

  function td(cls, child) {
    const cell = document.createElement("td");
    if (cls) cell.className = cls;
    if (child !== undefined && child !== null) {
      cell.appendChild(typeof child === "string" ? M.visible(child) : child);
    }
    return cell;
  }

  function rowFor(run) {
    const tr = document.createElement("tr");
    tr.dataset.run = run.run_id;
    tr.dataset.group = group ? cellValue(run, group) : "";
    const pick = document.createElement("input");
    pick.type = "checkbox"; pick.className = "pick"; pick.name = "runs"; pick.value = run.run_id;
    pick.setAttribute("form", "compare-form");
    pick.setAttribute("aria-label", "Select");
    tr.appendChild(td("sel", pick));
    const link = document.createElement("a");
    link.href = "/runs/" + encodeURIComponent(run.run_id);
    link.appendChild(M.visible(run.name || run.run_id.slice(0, 12)));
    tr.appendChild(td("", link));
    const status = td("", M.el("span", "badge st-" + run.status, run.status));
    if (run.tags["mltrail.error"]) status.title = run.tags["mltrail.error"];
    tr.appendChild(status);
    const time = document.createElement("time");
    time.textContent = M.fmtTime(run.created_ms);
    tr.appendChild(td("", time));
    const end = run.end_ms !== null ? run.end_ms : run.heartbeat_ms;
    tr.appendChild(td("num", end === null ? "" : M.fmtDuration(end - run.created_ms)));
    tr.appendChild(td("", run.user));
    cols.forEach(function (c) { tr.appendChild(td(c.startsWith("metrics.") ? "num" : "", cellValue(run, c))); });
    return tr;
  }

  function dataRows() {
    return Array.prototype.filter.call(tbody.rows, function (r) { return r.dataset.run; });
  }

  function regroup() {
    if (!group) return;
    Array.prototype.slice.call(tbody.querySelectorAll("tr.group-head")).forEach(function (r) { r.remove(); });
    const rows = dataRows();
    const order = [], groups = new Map();
    rows.forEach(function (r) {
      const g = r.dataset.group || "";
      if (!groups.has(g)) { groups.set(g, []); order.push(g); }
      groups.get(g).push(r);
    });
    order.sort(function (a, b) { return a === "" ? 1 : b === "" ? -1 : a < b ? -1 : a > b ? 1 : 0; });
    const width = table.tHead.rows[0].cells.length;
    order.forEach(function (g) {
      const head = document.createElement("tr");
      head.className = "group-head";
      head.dataset.groupValue = g;
      const cell = document.createElement("td");
      cell.colSpan = width;
      cell.appendChild(M.visible(group + " = " + (g === "" ? "(not set)" : g)));
      cell.appendChild(document.createTextNode(" (" + groups.get(g).length + ")"));
      head.appendChild(cell);
      tbody.appendChild(head);
      groups.get(g).forEach(function (r) { tbody.appendChild(r); });
    });
  }

  async function loadMore() {
    if (loading || !nextToken) return;
    loading = true;
    moreBtn.disabled = true;
    const q = new URLSearchParams({ project: ds.project, max_results: ds.pageSize, page_token: nextToken });
    if (ds.filter) q.set("filter", ds.filter);
    if (ds.orderBy) q.set("order_by", ds.orderBy);
    try {
      const page = await M.getJSON("/api/v1/runs?" + q.toString());
      const frag = document.createDocumentFragment();
      page.runs.forEach(function (run) { frag.appendChild(rowFor(run)); });
      tbody.appendChild(frag);
      nextToken = page.next_page_token || "";
      regroup();
    } catch (e) {
      shown.textContent = "could not load more runs: " + e.message;
      nextToken = "";
    } finally {
      loading = false;
      moreBtn.disabled = false;
      moreBtn.hidden = !nextToken;
      table.dataset.nextToken = nextToken;
      if (!shown.textContent.startsWith("could not")) shown.textContent = dataRows().length + " runs shown";
    }
  }

  moreBtn.addEventListener("click", loadMore);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; }) && !moreBtn.hidden) loadMore();
    }, { rootMargin: "400px" }).observe(moreBtn);
  }

  // picking runs to compare
  const compareBtn = document.getElementById("compare-btn");
  const diffBtn = document.getElementById("diff-btn");
  const count = document.getElementById("selected-count");
  const all = document.getElementById("select-all");
  function picked() { return tbody.querySelectorAll("input.pick:checked").length; }
  const maxCompare = Number(compareBtn.dataset.max || 0) || Infinity;
  function updatePicked() {
    const n = picked();
    compareBtn.disabled = n < 1 || n > maxCompare;
    diffBtn.disabled = n !== 2;
    count.textContent = n + " selected" + (n > maxCompare ? " (compare takes at most " + maxCompare + " runs)" : "");
    count.classList.toggle("error", n > maxCompare);
  }
  tbody.addEventListener("change", function (e) { if (e.target.classList.contains("pick")) updatePicked(); });
  all.addEventListener("change", function () {
    tbody.querySelectorAll("input.pick").forEach(function (c) { c.checked = all.checked; });
    updatePicked();
  });

  // grouping applies at once
  const groupSel = document.getElementById("group");
  if (groupSel) groupSel.addEventListener("change", function () { groupSel.form.submit(); });

  regroup();
  updatePicked();
})();
