// Scan controls of the search page (DICOM, NIfTI; docs/medical.md): a window preset for a
// DICOM query and for the thumbnails of scan results, and a series view (one card per series,
// showing its best slice). Loaded after app.js, whose search() and state it uses; app.js calls
// scans.params(), scans.decorate() and scans.summarise() where its search and cards are built.
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

  return {
    // Query parameters for POST /api/search (image and id queries).
    params(q) {
      if (q.kind === "file" && SCAN_NAME.test(q.name)) box.hidden = false;
      if (box.hidden) return "";
      const w = chosenWindow();
      return (w ? `&window=${encodeURIComponent(w)}` : "") + (group.checked ? "&group=series" : "");
    },
    // A card of the series view: how many of the series' slices matched.
    decorate(li, hit) {
      if (!hit.series) return;
      li.classList.add("series-card");
      const line = document.createElement("span");
      line.className = "series";
      const n = hit.series_entries;
      line.textContent = `series · best of ${n} matching slice${n === 1 ? "" : "s"}`;
      line.title = `series ${hit.series}`;
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
