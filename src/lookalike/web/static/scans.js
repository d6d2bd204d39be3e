// Scan controls of the search page (DICOM, NIfTI; docs/medical.md): a window preset for a
// DICOM query and for the thumbnails of scan results, and a series view (one card per series,
// showing its best slice). Loaded after app.js, whose search() and state it uses; app.js calls
// scans.params(), scans.grouped(), scans.decorate() and scans.summarise() where its search and cards are built.
"use strict";

window.scans = (() => {
  const PRESETS = [
    ["", "the library's window"],
    ["auto", "auto (the file's, else by modality)"],
    ["brain", "brain (40, 80)"],
    ["lung", "lung (−600, 1500)"],
    ["bone", "bone (400, 1800)"],
    ["soft", "soft tissue (40, 400)"],
    ["custom", "centre, width…"],
  ];
  const SCAN_NAME = /\.(dcm|dicom|dic|nii|nii\.gz)$/i;

  const box = document.createElement("fieldset");
  box.className = "scan-controls";
  box.id = "scan-controls";
  box.hidden = true;
  box.innerHTML = `
    <legend>Scans</legend>
    <label class="hint" for="scan-window">Window</label>
    <div class="scan-row">
      <select id="scan-window" class="button"></select>
      <input id="scan-custom" type="text" placeholder="e.g. 50,350" maxlength="40" size="9" hidden
             aria-label="Window centre and width" autocomplete="off" spellcheck="false">
    </div>
    <label class="scan-toggle"><input type="checkbox" id="scan-group"> One result per series</label>`;
  const windowSelect = box.querySelector("#scan-window");
  const custom = box.querySelector("#scan-custom");
  const group = box.querySelector("#scan-group");
  for (const [value, text] of PRESETS) windowSelect.add(new Option(text, value));
  document.getElementById("query-actions").after(box);

  function rerun() {
    if (state.query && state.query.kind !== "tag") search();
  }
  windowSelect.addEventListener("change", () => {
    custom.hidden = windowSelect.value !== "custom";
    if (!custom.hidden) { custom.focus(); return; }  // searched once the numbers are typed
    rerun();
  });
  custom.addEventListener("change", rerun);
  custom.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); rerun(); } });
  group.addEventListener("change", rerun);

  function chosenWindow() {
    if (windowSelect.value !== "custom") return windowSelect.value;
    return custom.value.replace(/\s+/g, "");  // the server names what is wrong with it
  }

  // Shown when the library holds scans, or once a scan file is the query.
  async function detect() {
    const where = encodeURIComponent('format = "dicom" or format = "nifti"');
    try {
      const res = await fetch(`/api/images?limit=1&where=${where}`);
      if (res.ok && (await res.json()).items.length > 0) box.hidden = false;
    } catch (e) {
      // no controls: the page works without them
    }
  }
  detect();

  // Browsers cannot show DICOM: a DICOM query is shown as the server renders it for the model.
  let previewUrl = null;
  let previewKey = null;
  async function preview(q, w) {
    if (previewKey && previewKey.file === q.file && previewKey.w === w) return;
    previewKey = { file: q.file, w };
    const magic = new Uint8Array(await q.file.slice(128, 132).arrayBuffer());
    if (String.fromCharCode(...magic) !== "DICM") return;
    box.hidden = false;
    const form = new FormData();
    form.append("file", q.file, q.name);
    try {
      const res = await fetch(`/api/scans/preview${w ? `?window=${encodeURIComponent(w)}` : ""}`, { method: "POST", body: form });
      if (!res.ok || state.query !== q) return;  // the search reports what is wrong with the file
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(await res.blob());
      el.queryImg.src = previewUrl;
    } catch (e) {
      // the file's own (broken) picture stays; the search says why
    }
  }

  // "More like this" on a scan shows the indexed file, which a browser cannot show for DICOM:
  // its thumbnail (in the chosen window) stands in.
  function queryThumb(q, w) {
    return `/api/images/${q.id}/thumb${w ? `?window=${encodeURIComponent(w)}` : ""}`;
  }
  el.queryImg.addEventListener("error", () => {
    const q = state.query;
    if (q && q.kind === "id" && !el.queryImg.src.includes("/thumb")) el.queryImg.src = queryThumb(q, box.hidden ? "" : chosenWindow());
  });

  return {
    // Query parameters for POST /api/search (image and id queries).
    params(q) {
      if (q.kind === "file" && SCAN_NAME.test(q.name)) box.hidden = false;
      const w = box.hidden ? "" : chosenWindow();
      if (q.kind === "file") preview(q, w);
      if (q.kind === "id" && el.queryImg.src.includes(`/api/images/${q.id}/thumb`)) el.queryImg.src = queryThumb(q, w);
      if (box.hidden) return "";
      return (w ? `&window=${encodeURIComponent(w)}` : "") + (group.checked ? "&group=series" : "");
    },
    // Whether params() asks for one result per series (which verify=true does not combine with).
    grouped() {
      return !box.hidden && group.checked;
    },
    // A card of the series view: how many of the series' slices matched.
    decorate(li, hit) {
      if (!hit.series) return;
      li.classList.add("series-card");
      const line = document.createElement("span");
      line.className = "series";
      const n = hit.series_entries;
      line.textContent = `best of ${n} slice${n === 1 ? "" : "s"}`;
      line.title = `The best-matching slice of series ${hit.series} (${n} of its slices among the candidates)`;
      (li.querySelector(".scan") || li.querySelector(".meta")).after(line);
    },
    summarise(data, summary) {
      if (data.results.some((h) => h.fields && (h.fields.format === "dicom" || h.fields.format === "nifti"))) box.hidden = false;
      const strong = summary.querySelector("strong");
      if (data.group === "series" && strong) {
        const n = data.results.length;
        strong.textContent = `${n} series`;
        summary.append(" · one card per series, showing its best-matching slice");
      }
      if (data.window) summary.append(` · window ${data.window}`);
    },
  };
})();
