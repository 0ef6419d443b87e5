/* Keyboard shortcuts: "/" filter or search, "j"/"k" next/previous run, Enter opens it,
   "x" selects it, "c" compare the selected runs, "?" this help, Escape closes it. */
(function () {
  "use strict";
  const help = document.getElementById("shortcuts");
  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#runs tbody tr[data-run]")); }
  function move(by) {
    const all = rows();
    if (!all.length) return;
    const now = all.findIndex(function (r) { return r.classList.contains("kb-current"); });
    const next = now < 0 ? (by > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, now + by));
    if (now >= 0) all[now].classList.remove("kb-current");
    all[next].classList.add("kb-current");
    all[next].scrollIntoView({ block: "nearest" });
    document.body.dataset.kbRun = all[next].dataset.run;
  }
  function current() { return document.querySelector("#runs tbody tr.kb-current"); }
  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "Escape") {
      toggleHelp(false);
      if (typing(ev.target)) ev.target.blur();
      return;
    }
    if (typing(ev.target)) return;
    const row = current();
    if (ev.key === "/") {
      const box = document.getElementById("filter") || document.getElementById("metric-search");
      if (box) { ev.preventDefault(); box.focus(); box.select(); }
    } else if (ev.key === "j" || ev.key === "k") {
      ev.preventDefault();
      move(ev.key === "j" ? 1 : -1);
    } else if (ev.key === "Enter" && row) {
      const link = row.querySelector("td a[href^='/runs/']");
      if (link) { ev.preventDefault(); link.click(); }
    } else if (ev.key === "x" && row) {
      const pick = row.querySelector("input.pick");
      if (pick) { pick.checked = !pick.checked; pick.dispatchEvent(new Event("change", { bubbles: true })); }
    } else if (ev.key === "c") {
      const btn = document.getElementById("compare-btn");
      if (btn && !btn.disabled) btn.click();
    } else if (ev.key === "?") {
      toggleHelp();
    }
  });
  if (help) help.addEventListener("click", function (ev) { if (ev.target.closest("button.close")) toggleHelp(false); });
})();
