/* The run page: console search and the files list. */
(function () {
  "use strict";
  const M = window.mltrail;

  function highlighted(text, q) {
    const frag = document.createDocumentFragment();
    if (!q) { frag.appendChild(M.visible(text)); return frag; }
    const low = text.toLowerCase(), needle = q.toLowerCase();
    let at = 0;
    for (let i = low.indexOf(needle); i >= 0; i = low.indexOf(needle, at)) {
      frag.appendChild(M.visible(text.slice(at, i)));
      frag.appendChild(M.el("mark", "", text.slice(i, i + needle.length)));
      at = i + needle.length;
    }
    frag.appendChild(M.visible(text.slice(at)));
    return frag;
  }

  const form = document.getElementById("console-form");
  if (form) {
    const box = document.getElementById("console-lines");
    const status = document.getElementById("console-status");
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const q = document.getElementById("console-q").value;
      const tail = document.getElementById("console-tail").value;
      const params = new URLSearchParams();
      if (tail) params.set("tail", tail);
      if (q) params.set("q", q);
      status.textContent = "searching...";
      try {
        const body = await M.getJSON("/api/v1/runs/" + encodeURIComponent(form.dataset.run) + "/console?" + params.toString());
        const frag = document.createDocumentFragment();
        body.lines.forEach(function (line) {
          const row = M.el("span", "ln s-" + line.stream);
          row.appendChild(M.el("span", "ts", M.fmtTime(line.timestamp_ms).slice(11)));
          row.appendChild(document.createTextNode(" "));
          row.appendChild(highlighted(line.text, q));
          frag.appendChild(row);
        });
        if (!body.lines.length) frag.appendChild(M.el("span", "empty", "(no lines" + (q ? " match" : "") + ")"));
        box.replaceChildren(frag);
        status.textContent = body.lines.length + " lines" + (q ? " matching \u201c" + q + "\u201d" : "");
        box.dataset.query = q;
      } catch (e) {
        status.textContent = "search failed: " + e.message;
      }
    });
  }

  const files = document.getElementById("files-list");
  if (files) {
    const run = files.dataset.run;
    M.getJSON("/api/v1/runs/" + encodeURIComponent(run) + "/files").then(function (body) {
      if (!body.files.length) { files.replaceChildren(M.el("p", "empty", "No files.")); return; }
      const table = M.el("table", "grid");
      table.id = "files-table";
      const head = table.createTHead().insertRow();
      ["Path", "Size", "Digest", "Uploaded"].forEach(function (h) { head.appendChild(M.el("th", "", h)); });
      const tbody = table.createTBody();
      body.files.forEach(function (f) {
        const tr = tbody.insertRow();
        const a = document.createElement("a");
        a.href = "/api/v1/runs/" + encodeURIComponent(run) + "/files/content?path=" + encodeURIComponent(f.path);
        a.appendChild(M.visible(f.path));
        tr.insertCell().appendChild(a);
        tr.insertCell().textContent = f.size + " B";
        tr.insertCell().textContent = String(f.digest).slice(0, 19);
        tr.insertCell().textContent = M.fmtTime(f.created_ms);
      });
      files.replaceChildren(table);
    }, function (e) {
      files.replaceChildren(M.el("p", "error", "could not list files: " + e.message));
    });
  }
})();
