/* mltrail UI helpers shared by the pages (no third-party code). */
(function () {
  "use strict";

  const CONTROL = /[\p{Cc}\p{Cf}\p{Cs}]/u;
  const SYMBOL = /\p{So}/u;

  function needsMark(chars, i) {
    const ch = chars[i];
    if (ch === "\t" || ch === "\n") return false;
    if (ch === "\u200d" && i > 0 && i < chars.length - 1 &&
        SYMBOL.test(chars[i - 1]) && SYMBOL.test(chars[i + 1])) return false;
    return CONTROL.test(ch);
  }

  /* Text as DOM nodes, with invisible / direction-changing characters shown as U+XXXX. */
  function visible(text) {
    const frag = document.createDocumentFragment();
    const s = text === null || text === undefined ? "" : String(text);
    if (!CONTROL.test(s)) { frag.appendChild(document.createTextNode(s)); return frag; }
    const chars = Array.from(s);
    let buf = "";
    chars.forEach(function (ch, i) {
      if (!needsMark(chars, i)) { buf += ch; return; }
      if (buf) { frag.appendChild(document.createTextNode(buf)); buf = ""; }
      const code = "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      const span = document.createElement("span");
      span.className = "cc";
      span.title = "invisible character " + code;
      span.textContent = code;
      frag.appendChild(span);
    });
    if (buf) frag.appendChild(document.createTextNode(buf));
    return frag;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.appendChild(visible(text));
    return node;
  }

  /* A number like Python's "%.6g"; the JSON spellings of non-finite floats too. */
  function fmtNum(x) {
    if (x === null || x === undefined) return "";
    if (typeof x === "string") {
      return ({ NaN: "nan", Infinity: "inf", "-Infinity": "-inf" })[x] || x;
    }
    if (typeof x === "boolean") return x ? "true" : "false";
    if (typeof x !== "number") return JSON.stringify(x);
    if (Number.isNaN(x)) return "nan";
    if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return "0";
    if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
    const exp = Math.floor(Math.log10(Math.abs(x)));
    if (exp < -4 || exp >= 6) {
      const parts = x.toExponential(5).split("e");
      const n = parseInt(parts[1], 10);
      return parts[0].replace(/\.?0+$/, "") + "e" + (n < 0 ? "-" : "+") + String(Math.abs(n)).padStart(2, "0");
    }
    const s = x.toPrecision(6);
    return s.indexOf(".") >= 0 ? s.replace(/\.?0+$/, "") : s;
  }

  /* A value from JSON for a cell: strings as is, numbers via fmtNum, objects as JSON. */
  function fmtValue(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return fmtNum(v);
    return JSON.stringify(v);
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function fmtTime(ms) {
    if (ms === null || ms === undefined) return "";
    const d = new Date(ms);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms < 1000) return Math.max(ms, 0) + "ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + "s";
    let m = Math.floor(s / 60);
    const sec = Math.floor(s) % 60;
    if (m < 60) return m + "m " + pad(sec) + "s";
    let h = Math.floor(m / 60); m = m % 60;
    if (h < 24) return h + "h " + pad(m) + "m";
    const d = Math.floor(h / 24); h = h % 24;
    return d + "d " + pad(h) + "h";
  }

  /* GET a JSON resource; a non-2xx answer throws an Error carrying the server's message. */
  async function getJSON(url, options) {
    const resp = await fetch(url, Object.assign({
      credentials: "same-origin", headers: { Accept: "application/json" },
    }, options || {}));
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const err = body && body.error ? body.error : {};
      const e = new Error(err.message || (resp.status + " " + resp.statusText));
      e.status = resp.status;
      e.code = err.code;
      throw e;
    }
    return body;
  }

  /* Run colours: 20 hand-picked distinct colours, then golden-angle hues at two lightnesses
     (no two of the first few hundred alike). A page colours a run by its position in the
     page's run order, so it has the same colour in every chart, legend and swatch. */
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777",
    "#65a30d", "#4f46e5", "#a16207", "#0d9488", "#be123c", "#7c3aed", "#ca8a04", "#1e3a8a",
    "#15803d", "#c2410c", "#6b21a8", "#0369a1", "#854d0e"];
  function hslHex(h, s, l) {
    const a = s * Math.min(l, 1 - l);
    const f = function (n) {
      const k = (n + h / 30) % 12;
      const c = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
      return Math.round(255 * c).toString(16).padStart(2, "0");
    };
    return "#" + f(0) + f(8) + f(4);
  }
  function runColor(i) {
    if (i < PALETTE.length) return PALETTE[i];
    const k = i - PALETTE.length;
    return hslHex((k * 137.508 + 17) % 360, 0.7, k % 2 ? 0.36 : 0.5);
  }

  /* Swatches of a page's runs (compare): the colour of the run's position, past the ten
     colours the stylesheet's c0..c9 classes give without script. */
  function paintSwatches() {
    document.querySelectorAll(".swatch[data-ci]").forEach(function (sw) {
      sw.style.backgroundColor = runColor(Number(sw.dataset.ci));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", paintSwatches);
  else paintSwatches();

  /* plotly layout colours of the current theme (transparent backgrounds, text and grid from
     the stylesheet's variables); charts redraw on the "mltrail:theme" event. */
  function themed(layout) {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim() || "#1d2330";
    const line = css.getPropertyValue("--line").trim() || "#e5e7eb";
    layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.plot_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({ color: fg }, layout.font || {});
    ["xaxis", "yaxis"].forEach(function (a) {
      layout[a] = Object.assign({ gridcolor: line, zerolinecolor: line, linecolor: line }, layout[a] || {});
    });
    return layout;
  }

  window.mltrail = { visible, el, fmtNum, fmtValue, fmtTime, fmtDuration, getJSON, runColor, PALETTE, themed };
})();
