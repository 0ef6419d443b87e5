/* Colour theme: follows prefers-color-scheme unless the user picked one with the header's
   toggle (kept in localStorage). Loaded in <head>, before the body paints, so a dark page
   never flashes white. */
(function () {
  "use strict";
  const KEY = "mltrail.theme";
  const root = document.documentElement;
  function stored() { try { return localStorage.getItem(KEY) || ""; } catch (e) { return ""; } }
  function effective() {
    const pick = root.dataset.theme;
    if (pick === "dark" || pick === "light") return pick;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function apply(pick) {
    if (pick === "dark" || pick === "light") root.dataset.theme = pick; else delete root.dataset.theme;
    root.dataset.themeEffective = effective();
    document.dispatchEvent(new CustomEvent("mltrail:theme", { detail: root.dataset.themeEffective }));
  }
  apply(stored());
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { apply(stored()); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    const btn = document.getElementById("theme-toggle");
    if (!btn) return;
    const label = function () {
      const pick = stored();
      btn.textContent = pick === "dark" ? "Dark" : pick === "light" ? "Light" : "Auto";
      btn.title = "Colour theme: " + btn.textContent.toLowerCase() + " (click to change)";
    };
    label();
    btn.addEventListener("click", function () {
      // auto -> the opposite of what auto shows -> the other one -> auto
      const pick = stored(), now = effective();
      const next = pick === "" ? (now === "dark" ? "light" : "dark") : (pick === "dark" && now === "dark" ? "light" : "");
      try { if (next) localStorage.setItem(KEY, next); else localStorage.removeItem(KEY); } catch (e) { /* private mode */ }
      apply(next);
      label();
    });
  });
})();
