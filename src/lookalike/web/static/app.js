// Lookalike web page: plain JavaScript over the REST API (/docs). No framework, no CDN.
"use strict";

const K = 24;            // results per search
const PAGE = 48;         // images per browse page
const MIN_CROP = 0.03;   // smaller drags are treated as clicks, not regions

const $ = (id) => document.getElementById(id);
const el = {
  stats: $("stats"), message: $("message"),
  tabSearch: $("tab-search"), tabBrowse: $("tab-browse"), tabDups: $("tab-dups"),
  searchView: $("search-view"), browseView: $("browse-view"), dupsView: $("dups-view"),
  dupsTier: $("dups-tier"), dupsSummary: $("dups-summary"), dups: $("dups"),
  tagForm: $("tag-form"), tagInput: $("tag-input"),
  drop: $("drop"), dropEmpty: $("drop-empty"), fileInput: $("file-input"), pick: $("pick"),
  query: $("query"), queryImg: $("query-img"), queryLabel: $("query-label"), cropArea: $("crop-area"),
  cropBox: $("crop-box"), cropHint: $("crop-hint"), queryActions: $("query-actions"),
  clearCrop: $("clear-crop"), newQuery: $("new-query"),
  summary: $("summary"), results: $("results"), placeholder: $("placeholder"),
  browse: $("browse"), prev: $("prev"), next: $("next"), pageInfo: $("page-info"),
  card: $("card"), explainToggle: $("explain-toggle"), verifyToggle: $("verify-toggle"), verifyLabel: $("verify-label"),
  rerankToggle: $("rerank-toggle"), rerankLabel: $("rerank-label"),
  addImages: $("add-images"), addInput: $("add-input"),
  dupsActions: $("dups-actions"), dupsSelection: $("dups-selection"), dupsMove: $("dups-move"), dupsTrash: $("dups-trash"),
  viewer: $("viewer"), viewerImg: $("viewer-img"), viewerVideo: $("viewer-video"), viewerName: $("viewer-name"), viewerPath: $("viewer-path"),
  viewerCopy: $("viewer-copy"), viewerFacts: $("viewer-facts"), viewerTags: $("viewer-tags"), viewerFields: $("viewer-fields"),
  viewerPrev: $("viewer-prev"), viewerNext: $("viewer-next"), viewerSimilar: $("viewer-similar"), viewerClose: $("viewer-close"),
  confirmDialog: $("confirm-dialog"), confirmText: $("confirm-text"), confirmOk: $("confirm-ok"),
  keyDialog: $("key-dialog"), keyInput: $("key-input"),
};
const KEY_STORE = "lookalike-api-key";
// Page settings remembered across visits (localStorage): "Same photo first" and "Re-rank".
const VERIFY_STORE = "lookalike-verify";
const RERANK_STORE = "lookalike-rerank";
const MIN_INLIERS = 15;  // keypoint matches that make a result the same photo (engine/verify.py; a unit test compares)

const state = {
  stats: null,
  query: null,     // {kind: "file", file, name}, {kind: "id", id, name, imageUrl} or {kind: "tag", text}
  crop: null,      // [x0, y0, x1, y1] as fractions of the query image, or null
  objectUrl: null,
  offset: 0,
  searchSeq: 0,    // answers to superseded searches are dropped
  view: "search",  // the view on screen; a message belongs to the view it was shown in
  dups: null,      // {report, keep: Map(group -> kept id), include: Set(group)} of the Duplicates view
};

// ---- talking to the API -------------------------------------------------------------------
async function api(path, options = {}) {
  const { res, body } = await request(path, options);
  if (!res.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `${res.status} ${res.statusText}`;
    const error = new Error(detail);
    error.status = res.status;
    if (res.status === 401 || res.status === 403) sessionStorage.removeItem(KEY_STORE);  // ask again next time
    throw error;
  }
  return body;
}

// The response and its JSON body (null when it has none), whatever the status.
async function request(path, options = {}) {
  let res;
  try {
    res = await fetch(path, options);
  } catch {
    throw new Error("Cannot reach the Lookalike server. Is `lookalike serve` still running?");
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return { res, body };
}

// Headers for a write: the API key when the server wants one (asked once per tab), or
// null when the user declined to give it.
async function writeHeaders() {
  if (!state.stats || !state.stats.writes_need_key) return {};
  let key = sessionStorage.getItem(KEY_STORE);
  if (!key) {
    key = await ask(el.keyDialog, () => { el.keyInput.value = ""; }) ? el.keyInput.value.trim() : "";
    if (!key) return null;
    sessionStorage.setItem(KEY_STORE, key);
  }
  return { "X-API-Key": key };
}

// Opens a <dialog> whose form has OK ("ok") and Cancel buttons; resolves true on OK.
function ask(dialog, prepare) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    if (prepare) prepare();
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}
function confirmAction(text, okLabel) {
  return ask(el.confirmDialog, () => { el.confirmText.textContent = text; el.confirmOk.textContent = okLabel; });
}

const plural = (n, word, many = `${word}s`) => `${n.toLocaleString()} ${n === 1 ? word : many}`;
function formatBytes(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${Math.round(n / 1e3)} kB`;
  return `${n} bytes`;
}
// "/photos/2023/rome/IMG_1.jpg" -> ["/photos/2023/rome", "IMG_1.jpg"] (server paths: / or \\).
function splitPath(path) {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? ["", path] : [path.slice(0, i) || path.slice(0, 1), path.slice(i + 1)];
}
function shortFolder(folder) {
  const parts = folder.split(/[\\/]/).filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join("/")}` : folder;
}

// ---- messages -------------------------------------------------------------------------------
function showMessage(text, kind = "info") {
  el.message.textContent = text;
  el.message.className = `message ${kind}`;
  el.message.hidden = false;
}
function showEmptyLibrary() {
  el.message.className = "message info";
  el.message.replaceChildren(
    "This library has no images yet. Index a folder with ",
    code("lookalike index PHOTOS --library DIR"), " (or upload through ", code("POST /api/images"),
    "), then reload this page.");
  el.message.hidden = false;
}
function code(text) { const c = document.createElement("code"); c.textContent = text; return c; }
function clearMessage() {
  el.message.hidden = true;
  if (state.stats && state.stats.images === 0) showEmptyLibrary();
}

async function loadStats() {
  try {
    state.stats = await api("/api/stats");
    const s = state.stats;
    el.stats.textContent = `${s.images.toLocaleString()} image${s.images === 1 ? "" : "s"} · ${s.model}`;
    if (s.images === 0) showEmptyLibrary();
    updateImageSwitches(state.query);  // what this server can do (verify_unavailable)
  } catch (e) {
    showMessage(e.message, "error");
  }
}

// ---- cards ------------------------------------------------------------------------------------
function scanLabel(f) {
  if (f.format !== "dicom" && f.format !== "nifti") return "";
  const parts = [f.modality, f.series_description || f.study_description];
  if (typeof f.slice_position === "number") parts.push(`${f.slice_position} mm`);
  return parts.filter(Boolean).join(" · ");
}

function makeCard(item, score, confidence, goodMatch) {
  const li = el.card.content.firstElementChild.cloneNode(true);
  const button = li.querySelector(".card");
  button.dataset.id = item.id;
  const full = item.path || item.name;
  const conf = confidence === undefined || confidence === null ? "" : ` · confidence ${Math.round(confidence * 100)}%`;
  button.title = `${full}${score === undefined ? "" : ` · score ${score.toFixed(4)}`}${conf} — click for more like this`;
  const folder = li.querySelector(".folder");
  folder.textContent = item.path ? shortFolder(splitPath(item.path)[0]) : "";
  li.querySelector(".view").addEventListener("click", () => openViewer(item.id, li));
  const img = li.querySelector("img");
  img.src = item.thumb_url;
  img.alt = item.name;
  img.addEventListener("error", () => { img.alt = `${item.name} (file missing)`; }, { once: true });
  li.querySelector(".name").textContent = item.name;
  const scan = scanLabel(item.fields || {});
  if (scan) {  // a DICOM frame or NIfTI slice: what and where it is
    const line = document.createElement("span");
    line.className = "scan";
    line.textContent = scan;
    li.querySelector(".meta").after(line);
  }
  const s = li.querySelector(".score");
  if (score === undefined) {
    s.remove();
  } else if (conf && goodMatch !== undefined && goodMatch !== null) {
    // Calibrated: beside the cosine, the probability that it shows the same thing.
    s.textContent = score.toFixed(3);
    const c = document.createElement("span");
    c.className = "confidence";
    c.textContent = `${Math.round(confidence * 100)}%`;
    c.title = "confidence: the probability that this shows the same thing as the query";
    s.after(c);
    li.dataset.confidence = confidence;
    if (confidence >= goodMatch) { s.classList.add("high"); c.classList.add("high"); }
  } else {
    s.textContent = score.toFixed(3);
    if (score >= 0.9) s.classList.add("high");
  }
  button.addEventListener("click", () => {
    showView("search");
    setQueryById(item.id, item.name, item.image_url, true);
  });
  if (isVerified(item)) {  // "Same photo first": how many points of the query it matched
    const line = document.createElement("span");
    line.className = "inliers";
    line.textContent = `${item.inliers.toLocaleString()} matching points`;
    line.title = "Keypoints of the query found here in the same arrangement: this shows the same photo";
    li.querySelector(".meta").after(line);
  }
  if (window.scans) scans.decorate(li, item);
  return li;
}
const isVerified = (hit) => typeof hit.inliers === "number" && hit.inliers >= MIN_INLIERS;

// ---- the query ----------------------------------------------------------------------------------
function showQuery(src, label) {
  if (state.objectUrl && src !== state.objectUrl) { URL.revokeObjectURL(state.objectUrl); state.objectUrl = null; }
  state.crop = null;
  el.cropBox.hidden = true;
  el.clearCrop.hidden = true;
  el.queryImg.src = src;
  el.queryLabel.textContent = label;
  el.queryLabel.title = label;
  el.dropEmpty.hidden = true;
  el.query.hidden = false;
  el.queryActions.hidden = false;
  el.drop.classList.add("has-query");
}

function resetQuery(keepHash = false) {
  if (state.objectUrl) { URL.revokeObjectURL(state.objectUrl); state.objectUrl = null; }
  state.query = null;
  state.crop = null;
  state.searchSeq++;
  el.query.hidden = true;
  el.queryActions.hidden = true;
  el.dropEmpty.hidden = false;
  el.drop.classList.remove("has-query");
  el.queryImg.removeAttribute("src");
  el.results.replaceChildren();
  el.summary.textContent = "";
  el.placeholder.hidden = false;
  updateImageSwitches(null);
  if (!keepHash && (location.hash.startsWith("#similar/") || location.hash.startsWith("#tag/"))) history.pushState(null, "", location.pathname);
}

function setQueryFile(file) {
  if (!file) return;
  const limit = state.stats ? state.stats.max_upload_bytes : Infinity;
  if (file.size > limit) {
    showMessage(`${file.name || "That image"} is ${(file.size / 1e6).toFixed(1)} MB; this server takes up to ${(limit / 1e6).toFixed(0)} MB.`, "error");
    return;
  }
  const name = file.name || "pasted image";
  state.query = { kind: "file", file, name };
  state.objectUrl = URL.createObjectURL(file);
  showQuery(state.objectUrl, name);
  if (location.hash.startsWith("#similar/") || location.hash.startsWith("#tag/")) history.pushState(null, "", location.pathname);
  search();
}

function setQueryById(id, name, imageUrl, push) {
  state.query = { kind: "id", id, name, imageUrl };
  showQuery(imageUrl, `More like ${name}`);
  if (push && location.hash !== `#similar/${id}`) history.pushState(null, "", `#similar/${id}`);
  window.scrollTo({ top: 0 });
  search();
}

// Search by tag: no query image; the scores are the classifier's confidence.
function setQueryByTag(text, push) {
  resetQuery(true);
  state.query = { kind: "tag", text };
  el.tagInput.value = text;
  const hash = `#tag/${encodeURIComponent(text)}`;
  if (push && location.hash !== hash) history.pushState(null, "", hash);
  search();
}
el.tagForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = el.tagInput.value.trim();
  if (text) setQueryByTag(text, true);
});

async function search() {
  const q = state.query;
  if (!q) return;
  const seq = ++state.searchSeq;
  const crop = state.crop;
  let options;
  let url = `/api/search?k=${K}`;
  if (q.kind === "tag") {
    url += `&q=${encodeURIComponent(q.text)}`;
    options = {};
  } else if (q.kind === "file") {
    const form = new FormData();
    form.append("file", q.file, q.name);
    if (crop) form.append("crop", crop.join(","));
    options = { method: "POST", body: form };
  } else {
    options = { method: "POST", headers: { "Content-Type": "application/json" },
                body: JSON.stringify(crop ? { id: q.id, crop } : { id: q.id }) };
  }
  if (q.kind !== "tag" && window.scans) url += scans.params(q);  // window, series view (scans.js)
  if (window.feedback) options = feedback.amend(q, options);  // thumbs up/down (feedback.js)
  const verify = verifyPlan(q);
  if (verify.send) url += "&verify=true";
  verify.plain = q.kind !== "tag" && !el.rerankToggle.checked;  // as sent: the summary says so
  if (verify.plain) url += "&rerank=none";
  el.summary.textContent = "Searching…";
  el.results.setAttribute("aria-busy", "true");
  const t0 = performance.now();
  try {
    const data = await api(url, options);
    if (seq !== state.searchSeq) return;
    const total = Math.round(performance.now() - t0);
    clearMessage();
    renderResults(data, total, verify);
  } catch (e) {
    if (seq !== state.searchSeq) return;
    el.summary.textContent = "";
    el.results.replaceChildren();
    showMessage(e.message, "error");
    if (q.kind === "file") resetQuery();  // nothing useful to show for an image the server refused
  } finally {
    if (seq === state.searchSeq) el.results.removeAttribute("aria-busy");
  }
}

function renderResults(data, totalMs, verify = { send: false, note: "" }) {
  el.placeholder.hidden = true;
  const good = data.good_match;
  const cards = data.results.map((hit) => makeCard(hit, hit.score, hit.confidence, good));
  const nVerified = data.results.filter(isVerified).length;
  if (data.verdict && good !== null && good !== undefined) {
    // A line between the good matches and the rest; at the top when nothing is a good match.
    // Verified results come first and show the same photo, so they count as good matches.
    const nGood = data.results.filter((hit) => isVerified(hit) || (hit.confidence !== null && hit.confidence >= good)).length;
    if (nGood < cards.length) cards.splice(nGood, 0, separator(nGood === 0 ? "No good match — the closest images:" : "Not good matches:"));
  }
  el.results.replaceChildren(...cards);
  window.feedback?.decorate(el.results, data.results);
  if (el.explainToggle.checked) applyExplain();
  const n = data.results.length;
  const what = data.crop ? " for the selected region" : "";
  el.summary.replaceChildren();
  const strong = document.createElement("strong");
  const tag = state.query && state.query.kind === "tag" ? state.query.text : null;
  strong.textContent = tag ? `${n} image${n === 1 ? "" : "s"} tagged “${tag}”` : `${n} result${n === 1 ? "" : "s"}${what}`;
  el.summary.append(strong, tag ? " · score = the classifier's confidence" : "",
                    ` · search ${data.took_ms.toFixed(0)} ms, ${totalMs} ms with transfer`);
  el.summary.dataset.tookMs = data.took_ms;
  el.summary.dataset.verdict = data.verdict || "";
  if (verify.send) el.summary.append(` · ${nVerified ? plural(nVerified, "result") : "none"} verified as the same photo`);
  else if (verify.note) el.summary.append(` · ${verify.note}`);
  if (verify.plain) el.summary.append(" · not re-ranked");
  if (data.verdict === "no good match" && n > 0 && nVerified === 0) {
    const none = document.createElement("strong");
    none.className = "no-match";
    none.textContent = "no good match";
    el.summary.append(" · ", none);
  }
  if (n === 0 && tag) {
    el.summary.append(" · no image shows it");
  } else if (n === 0 && state.stats && state.stats.images > 0) {
    el.summary.append(" · nothing in the library scored high enough");
  }
  if (window.scans) scans.summarise(data, el.summary);
}

// "Why did it match?": each result's thumbnail becomes its heat map against the query
// (GET /api/explain), for queries that are indexed images; off again restores the thumbnails.
function applyExplain() {
  const on = el.explainToggle.checked;
  const q = state.query;
  const canExplain = q && q.kind === "id" && !state.crop;
  el.results.classList.toggle("explaining", on && canExplain);
  for (const card of el.results.querySelectorAll(".card")) {
    const img = card.querySelector("img");
    if (!img.dataset.thumb) img.dataset.thumb = img.src;
    const url = `/api/explain?query=${q && q.id}&result=${card.dataset.id}&side=result`;
    const want = on && canExplain ? url : img.dataset.thumb;
    if (img.getAttribute("src") !== want) img.src = want;
  }
  if (on && q && !canExplain) showMessage("“Why did it match?” works when the query is an image of the library: click a result to search from it.", "info");
}

el.explainToggle.addEventListener("change", applyExplain);

// "Same photo first": verify=true on image searches (geometric verification of the top 20
// candidates, engine/verify.py). It takes one query image, so it is left out, and the summary
// says so, while + / − refinements make several (feedback.js) or scans show one card per
// series (scans.js); word searches have no query image to match points against.
const VERIFY_TITLE = el.verifyLabel.title;
function verifyPlan(q) {
  updateImageSwitches(q);
  if (!el.verifyToggle.checked || q.kind === "tag") return { send: false, note: "" };
  if (state.stats?.verify_unavailable) return { send: false, note: "same photo first is unavailable on this server" };
  if (window.feedback?.active()) return { send: false, note: "same photo first is off while refining with + / −" };
  if (window.scans?.grouped()) return { send: false, note: "same photo first is off with one result per series" };
  return { send: true, note: "" };
}

// "Re-rank": rerank=qe (the server's default: query expansion) or, off, rerank=none.
const RERANK_TITLE = el.rerankLabel.title;

// Both switches need a query image: greyed for a tag search, with a title saying why.
// Same photo first is greyed too where the server cannot verify (no OpenCV: /api/stats says why).
function updateImageSwitches(q) {
  const tag = q?.kind === "tag";
  const missing = state.stats?.verify_unavailable;
  for (const [input, label, title, why] of [
    [el.verifyToggle, el.verifyLabel, VERIFY_TITLE,
     missing ? `Not available on this server: ${missing}` : tag ? "Same photo first needs a query image: it does not apply to a tag search" : ""],
    [el.rerankToggle, el.rerankLabel, RERANK_TITLE,
     tag ? "Re-ranking needs a query image: a tag search is ranked by the classifier's confidence" : ""],
  ]) {
    input.disabled = Boolean(why);
    label.classList.toggle("disabled", Boolean(why));
    label.title = why || title;
  }
}

// Settings in localStorage; a browser that blocks storage just starts from the defaults.
function remembered(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}
function remember(key, value) {
  try { if (value) localStorage.setItem(key, value); else localStorage.removeItem(key); } catch { /* not kept */ }
}
el.verifyToggle.checked = remembered(VERIFY_STORE) === "on";
el.rerankToggle.checked = remembered(RERANK_STORE) !== "none";
el.verifyToggle.addEventListener("change", () => {
  remember(VERIFY_STORE, el.verifyToggle.checked ? "on" : "");
  if (state.query && state.query.kind !== "tag") search();
});
el.rerankToggle.addEventListener("change", () => {
  remember(RERANK_STORE, el.rerankToggle.checked ? "" : "none");
  if (state.query && state.query.kind !== "tag") search();
});

function separator(text) {
  const li = document.createElement("li");
  li.className = "separator";
  li.setAttribute("role", "separator");
  li.textContent = text;
  return li;
}

// ---- dragging a region on the query image ---------------------------------------------------------
// The image is shown with object-fit: contain, so its pixels may not fill the element.
function imageRect() {
  const img = el.queryImg;
  const box = img.getBoundingClientRect();
  const nw = img.naturalWidth, nh = img.naturalHeight;
  if (!nw || !nh) return null;
  const scale = Math.min(box.width / nw, box.height / nh);
  const w = nw * scale, h = nh * scale;
  return { left: box.left + (box.width - w) / 2, top: box.top + (box.height - h) / 2, width: w, height: h };
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));
let drag = null;

function fractionAt(event, rect) {
  return [clamp01((event.clientX - rect.left) / rect.width), clamp01((event.clientY - rect.top) / rect.height)];
}

function drawBox(box) {
  const rect = imageRect();
  const area = el.cropArea.getBoundingClientRect();
  if (!rect) return;
  const [x0, y0, x1, y1] = box;
  Object.assign(el.cropBox.style, {
    left: `${rect.left - area.left + x0 * rect.width}px`, top: `${rect.top - area.top + y0 * rect.height}px`,
    width: `${(x1 - x0) * rect.width}px`, height: `${(y1 - y0) * rect.height}px`,
  });
  el.cropBox.hidden = false;
}

function normalise(a, b) {
  const r = (v) => Math.round(v * 10000) / 10000;
  return [r(Math.min(a[0], b[0])), r(Math.min(a[1], b[1])), r(Math.max(a[0], b[0])), r(Math.max(a[1], b[1]))];
}

el.cropArea.addEventListener("pointerdown", (event) => {
  const rect = imageRect();
  if (!rect || event.button !== 0) return;
  event.preventDefault();
  el.cropArea.setPointerCapture(event.pointerId);
  drag = { start: fractionAt(event, rect), rect };
});
el.cropArea.addEventListener("pointermove", (event) => {
  if (!drag) return;
  drawBox(normalise(drag.start, fractionAt(event, drag.rect)));
});
el.cropArea.addEventListener("pointerup", (event) => {
  if (!drag) return;
  const box = normalise(drag.start, fractionAt(event, drag.rect));
  drag = null;
  if (box[2] - box[0] < MIN_CROP || box[3] - box[1] < MIN_CROP) {
    drawBoxOrHide();
    return;
  }
  state.crop = box;
  el.cropBox.dataset.crop = box.join(",");
  drawBox(box);
  el.clearCrop.hidden = false;
  search();
});
el.cropArea.addEventListener("pointercancel", () => { drag = null; drawBoxOrHide(); });
function drawBoxOrHide() { if (state.crop) drawBox(state.crop); else el.cropBox.hidden = true; }
window.addEventListener("resize", () => { if (state.crop) drawBox(state.crop); });

el.clearCrop.addEventListener("click", () => {
  state.crop = null;
  el.cropBox.hidden = true;
  delete el.cropBox.dataset.crop;
  el.clearCrop.hidden = true;
  search();
});
el.newQuery.addEventListener("click", () => { resetQuery(); el.fileInput.click(); });

// ---- picking, dropping, pasting ---------------------------------------------------------------------
el.pick.addEventListener("click", () => el.fileInput.click());
el.drop.addEventListener("keydown", (e) => {
  if ((e.key === "Enter" || e.key === " ") && !state.query) { e.preventDefault(); el.fileInput.click(); }
});
el.fileInput.addEventListener("change", () => {
  const file = el.fileInput.files[0];
  el.fileInput.value = "";  // choosing the same file again still fires change
  if (file) { showView("search"); setQueryFile(file); }
});

let dragDepth = 0;
document.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth++; el.drop.classList.add("over"); });
document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; el.drop.classList.remove("over"); } });
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  el.drop.classList.remove("over");
  const file = [...(e.dataTransfer?.files || [])][0];
  if (file) { showView("search"); setQueryFile(file); }
  else showMessage("That was not a file. Drop an image file from your computer.", "error");
});
document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === "file");
  if (!item) return;
  e.preventDefault();
  showView("search");
  setQueryFile(item.getAsFile());
});

// ---- browsing -------------------------------------------------------------------------------------
async function loadPage(offset) {
  try {
    const page = await api(`/api/images?offset=${offset}&limit=${PAGE}`);
    state.offset = page.offset;
    el.browse.replaceChildren(...page.items.map((item) => makeCard(item)));
    if (page.total === 0) el.browse.replaceChildren(placeholder("browse-empty",
      "This library is empty. Add pictures with the Add images button above, or index a folder on the server with "
      + "`lookalike index PHOTOS --library DIR`."));
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.items.length;
    el.pageInfo.textContent = page.total ? `${first}–${last} of ${page.total.toLocaleString()}` : "No images yet";
    el.prev.disabled = page.offset === 0;
    el.next.disabled = last >= page.total;
  } catch (e) {
    showMessage(e.message, "error");
  }
}
function placeholder(id, text) {
  const li = document.createElement("li");
  li.className = "placeholder wide";
  li.id = id;
  li.textContent = text;
  return li;
}

el.prev.addEventListener("click", () => { history.pushState(null, "", `#browse/${Math.max(0, state.offset - PAGE)}`); route(); });
el.next.addEventListener("click", () => { history.pushState(null, "", `#browse/${state.offset + PAGE}`); route(); });

// ---- duplicates --------------------------------------------------------------------------------------
const TIER_TEXT = { exact: "exact copies", near: "near-duplicates", similar: "similar shots" };
let dupsSeq = 0;

async function loadDuplicates(tier) {
  const seq = ++dupsSeq;
  el.dupsTier.value = tier;
  el.dups.replaceChildren();
  el.dupsActions.hidden = true;
  state.dups = null;
  el.dupsSummary.textContent = "Looking for duplicates…";
  el.dups.setAttribute("aria-busy", "true");
  try {
    const report = await api(`/api/duplicates${tier ? `?tier=${tier}` : ""}`);
    if (seq !== dupsSeq) return;
    renderDuplicates(report, tier);
  } catch (e) {
    if (seq !== dupsSeq) return;
    el.dupsSummary.textContent = "";
    showMessage(e.message, "error");
  } finally {
    if (seq === dupsSeq) el.dups.removeAttribute("aria-busy");
  }
}

function renderDuplicates(report, tier) {
  const n = report.groups.length;
  const t = report.thresholds;
  el.dupsSummary.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = `${n} group${n === 1 ? "" : "s"} among ${report.images.toLocaleString()} images`;
  const counts = Object.entries(report.counts).filter(([k]) => !tier || k === tier).map(([k, v]) => `${TIER_TEXT[k]}: ${v}`);
  el.dupsSummary.append(strong, ` · ${counts.join(", ")} · ${report.seconds.toFixed(1)} s`);
  if (n === 0) {
    const why = {
      exact: "no two files are byte-identical",
      near: `no image is a re-encoded, resized or lightly cropped copy of another (features at least ${t.near_cosine} alike, confirmed by matching keypoints)`,
      similar: `no two images are similar shots (features at least ${t.similar_cosine} alike)`,
    };
    const reasons = (tier ? [tier] : ["exact", "near", "similar"]).map((k) => why[k]);
    const p = document.createElement("p");
    p.className = "placeholder";
    p.id = "dups-empty";
    p.textContent = report.images < 2 ? "Duplicates need at least two images in the library."
      : `No duplicates: ${reasons.join("; ")}.`;
    el.dups.replaceChildren(p);
    return;
  }
  el.dupsSummary.append(` · the first image of each group is kept (policy: ${report.keep_policy}); score = similarity to it`);
  // Exact copies and near-duplicates are set aside by default; similar shots only when ticked.
  state.dups = { report, keep: new Map(report.groups.map((g) => [g.group, g.members[0].id])),
                 aside: new Set(report.groups.flatMap((g) => g.members.filter((m) => m.match === "exact" || m.match === "near")
                                                                       .map((m) => m.id))) };
  el.dups.replaceChildren(...report.groups.map((g) => {
    const li = document.createElement("li");
    li.className = "dup-group";
    li.dataset.tier = g.tier;
    li.dataset.group = g.group;
    const head = document.createElement("p");
    head.className = "dup-head";
    const title = document.createElement("strong");
    title.textContent = `Group ${g.group}`;
    const badge = document.createElement("span");
    badge.className = `tier ${g.tier}`;
    badge.textContent = g.tier;
    head.append(title, badge, `${g.members.length} images`);
    const grid = document.createElement("ol");
    grid.className = "grid";
    grid.append(...g.members.map((m) => {
      const card = makeCard(m, m.score);
      card.dataset.match = m.match || "";
      const controls = document.createElement("div");
      controls.className = "dup-controls";
      const keepThis = document.createElement("button");
      keepThis.type = "button";
      keepThis.className = "keep-this";
      keepThis.addEventListener("click", () => {
        state.dups.keep.set(g.group, m.id);
        state.dups.aside.delete(m.id);  // a keeper is never set aside
        markKeeper(li, g);
      });
      const aside = document.createElement("label");
      aside.className = "aside-toggle";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.addEventListener("change", () => {
        if (box.checked) state.dups.aside.add(m.id); else state.dups.aside.delete(m.id);
        markKeeper(li, g);
      });
      aside.append(box, ` set aside${m.match ? ` (${m.match})` : ""}`);
      controls.append(keepThis, aside);
      card.append(controls);
      return card;
    }));
    li.append(head, grid);
    markKeeper(li, g);
    return li;
  }));
}

// Shows which image of a group is kept and which would be set aside; updates the totals.
function markKeeper(li, g) {
  const kept = state.dups.keep.get(g.group);
  for (const item of li.querySelectorAll(".card-item")) {
    const id = Number(item.querySelector(".card").dataset.id);
    const isKept = id === kept;
    item.querySelector(".card").classList.toggle("keep", isKept);
    item.classList.toggle("aside", !isKept && state.dups.aside.has(id));
    const button = item.querySelector(".keep-this");
    button.textContent = isKept ? "Kept" : "Keep this";
    button.disabled = isKept;
    button.setAttribute("aria-pressed", String(isKept));
    const toggle = item.querySelector(".aside-toggle");
    toggle.hidden = isKept;
    toggle.querySelector("input").checked = !isKept && state.dups.aside.has(id);
  }
  const chosen = resolveChoices();
  const n = chosen.reduce((sum, c) => sum + c.remove.length, 0);
  el.dupsSelection.textContent = n ? `${plural(n, "image")} from ${plural(chosen.length, "group")} would be set aside (${formatBytes(chosenBytes(chosen))})`
    : "Tick the images to set aside.";
  el.dupsMove.disabled = el.dupsTrash.disabled = n === 0;
  el.dupsActions.hidden = false;
}

function resolveChoices() {
  const d = state.dups;
  return d.report.groups.map((g) => {
    const keep = d.keep.get(g.group);
    return { keep, remove: g.members.filter((m) => m.id !== keep && d.aside.has(m.id)).map((m) => m.id) };
  }).filter((c) => c.remove.length);
}
function chosenBytes(chosen) {
  const size = new Map(state.dups.report.groups.flatMap((g) => g.members.map((m) => [m.id, m.size])));
  return chosen.reduce((sum, c) => sum + c.remove.reduce((s, id) => s + size.get(id), 0), 0);
}

async function resolveDuplicates(action) {
  if (!state.dups) return;
  const groups = resolveChoices();
  const n = groups.reduce((sum, c) => sum + c.remove.length, 0);
  if (!n) return;
  const what = `${plural(n, "image")} (${formatBytes(chosenBytes(groups))}) from ${plural(groups.length, "group")}`;
  const text = action === "trash"
    ? `Move ${what} to the server's trash? Kept images stay where they are. This can be undone on the server.`
    : `Move ${what} into the library's set-aside folder on the server? Kept images stay where they are. This can be undone on the server.`;
  if (!await confirmAction(text, action === "trash" ? "Move to trash" : "Move aside")) return;
  const headers = await writeHeaders();
  if (headers === null) return;
  try {
    const r = await api("/api/duplicates/resolve", { method: "POST", headers: { ...headers, "Content-Type": "application/json" },
                                                      body: JSON.stringify({ action, groups }) });
    const done = `${action === "trash" ? "Moved to the trash" : "Set aside"}: ${plural(r.actions.length, "image")}`
      + (r.set_aside ? ` (in ${r.set_aside})` : "");
    const skipped = r.skipped.length ? `; ${plural(r.skipped.length, "file")} left alone: `
      + r.skipped.map((s) => `${s.path}: ${s.reason}`).join("; ") : "";
    const undo = r.log ? `. Undo on the server with: lookalike duplicates --undo ${r.log}` : "";
    await loadDuplicates(el.dupsTier.value);
    showMessage(done + skipped + undo, r.skipped.length ? "error" : "info");
    loadStats();
  } catch (e) {
    showMessage(e.message, "error");
  }
}
el.dupsMove.addEventListener("click", () => resolveDuplicates("move"));
el.dupsTrash.addEventListener("click", () => resolveDuplicates("trash"));
el.dupsTier.addEventListener("change", () => {
  history.pushState(null, "", el.dupsTier.value ? `#duplicates/${el.dupsTier.value}` : "#duplicates");
  route();
});

// ---- the full-size viewer ----------------------------------------------------------------------------
const viewer = { ids: [], index: 0, seq: 0, image: null };
const MAX_VIEWER_TAGS = 8;

function openViewer(id, li) {
  const grid = li.closest("ol");
  viewer.ids = grid ? [...grid.querySelectorAll(".card")].map((c) => Number(c.dataset.id)) : [id];
  viewer.index = Math.max(0, viewer.ids.indexOf(id));
  if (!el.viewer.open) el.viewer.showModal();
  showInViewer();
}

async function showInViewer() {
  const seq = ++viewer.seq;
  const id = viewer.ids[viewer.index];
  el.viewer.dataset.id = id;
  el.viewerPrev.disabled = viewer.index === 0;
  el.viewerNext.disabled = viewer.index >= viewer.ids.length - 1;
  try {
    const image = await api(`/api/images/${id}`);
    if (seq !== viewer.seq) return;
    viewer.image = image;
    // A video frame plays its video from the moment it was found (the file route serves ranges).
    const time = (image.fields || {}).media === "video" ? Number(image.fields.video_time) : NaN;
    el.viewerVideo.hidden = Number.isNaN(time);
    el.viewerImg.hidden = !el.viewerVideo.hidden;
    if (el.viewerVideo.hidden) {
      el.viewerVideo.removeAttribute("src");
      el.viewerImg.src = image.image_url;
    } else {
      el.viewerImg.removeAttribute("src");
      el.viewerVideo.src = `${image.image_url}#t=${time}`;
    }
    el.viewerImg.alt = image.name;
    el.viewerName.textContent = image.name;
    el.viewerPath.textContent = image.path;
    el.viewerCopy.textContent = "Copy path";
    const when = new Date(image.mtime * 1000).toLocaleString();
    el.viewerFacts.textContent = `${image.width} × ${image.height} px · ${formatBytes(image.size)} · modified ${when}`
      + ` · ${viewer.index + 1} of ${viewer.ids.length}`;
    // The likeliest classes only: a library keeps dozens per image, most of them near 0 %.
    const tags = image.tags.filter(([, p], i) => i < MAX_VIEWER_TAGS && (i === 0 || p >= 0.01));
    el.viewerTags.replaceChildren(...(tags.length ? tags.map(([label, p]) => {
      const li = document.createElement("li");
      li.textContent = `${label} ${(p * 100).toFixed(0)}%`;
      return li;
    }) : [Object.assign(document.createElement("li"), { className: "hint", textContent: "No tags" })]));
    const fields = Object.entries(image.fields || {});
    el.viewerFields.replaceChildren(...(fields.length ? fields.flatMap(([key, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = Array.isArray(value) ? value.join(", ") : String(value);
      return [dt, dd];
    }) : [Object.assign(document.createElement("dd"), { className: "hint", textContent: "No metadata fields" })]));
  } catch (e) {
    if (seq !== viewer.seq) return;
    el.viewer.close();
    showMessage(e.message, "error");
  }
}

function stepViewer(delta) {
  const next = viewer.index + delta;
  if (next < 0 || next >= viewer.ids.length) return;
  viewer.index = next;
  showInViewer();
}
// On the document, not the dialog: focus may rest on <body> while the dialog is open.
document.addEventListener("keydown", (e) => {
  if (!el.viewer.open || e.target === el.viewerVideo) return;  // arrows on a focused video seek it
  if (e.key === "ArrowLeft") { e.preventDefault(); stepViewer(-1); }
  else if (e.key === "ArrowRight") { e.preventDefault(); stepViewer(1); }
});  // Escape closes a modal <dialog> by itself
el.viewer.addEventListener("click", (e) => { if (e.target === el.viewer) el.viewer.close(); });  // the backdrop
el.viewer.addEventListener("close", () => {
  viewer.seq++;
  el.viewerImg.removeAttribute("src");
  el.viewerVideo.pause();
  el.viewerVideo.removeAttribute("src");
});
el.viewerPrev.addEventListener("click", () => stepViewer(-1));
el.viewerNext.addEventListener("click", () => stepViewer(1));
el.viewerClose.addEventListener("click", () => el.viewer.close());
el.viewerSimilar.addEventListener("click", () => {
  const image = viewer.image;
  el.viewer.close();
  if (!image) return;
  showView("search");
  setQueryById(image.id, image.name, image.image_url, true);
});
el.viewerCopy.addEventListener("click", async () => {
  const path = el.viewerPath.textContent;
  try {
    await navigator.clipboard.writeText(path);
  } catch {  // no clipboard permission (e.g. plain http): select it for Ctrl+C instead
    const range = document.createRange();
    range.selectNodeContents(el.viewerPath);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    el.viewerCopy.textContent = "Selected: press Ctrl+C";
    return;
  }
  el.viewerCopy.textContent = "Copied";
});

// ---- adding images ---------------------------------------------------------------------------------
el.addImages.addEventListener("click", () => el.addInput.click());
el.addInput.addEventListener("change", () => {
  const files = [...el.addInput.files];
  el.addInput.value = "";
  if (files.length) addImages(files);
});

async function addImages(files) {
  const headers = await writeHeaders();
  if (headers === null) return;
  let added = 0, known = 0;
  const failed = [];
  showMessage(`Adding ${plural(files.length, "image")}…`);
  for (const file of files) {
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const { res, body } = await request("/api/images", { method: "POST", body: form, headers });
      if (res.status === 201) added++;
      else if (res.ok) known++;
      else {
        if (res.status === 401 || res.status === 403) sessionStorage.removeItem(KEY_STORE);
        const detail = body && typeof body.detail === "string" ? body.detail : `${res.status} ${res.statusText}`;
        failed.push(detail.startsWith(file.name) ? detail : `${file.name}: ${detail}`);  // most errors name the file already
      }
    } catch (e) {
      failed.push(`${file.name}: ${e.message}`);
    }
  }
  await loadStats();
  const parts = [`Added ${plural(added, "image")}`];
  if (known) parts.push(`${known} already in the library`);
  if (failed.length) parts.push(`${failed.length} failed: ${failed.join("; ")}`);
  showMessage(parts.join("; "), failed.length ? "error" : "info");
  if (state.view === "browse") loadPage(state.offset);
}

// ---- views and the address bar ------------------------------------------------------------------------
function showView(view) {
  if (view !== state.view) {
    clearMessage();  // a message belongs to the view it was shown in
    state.view = view;
  }
  el.searchView.hidden = view !== "search";
  el.browseView.hidden = view !== "browse";
  el.dupsView.hidden = view !== "duplicates";
  el.tabSearch.setAttribute("aria-pressed", String(view === "search"));
  el.tabBrowse.setAttribute("aria-pressed", String(view === "browse"));
  el.tabDups.setAttribute("aria-pressed", String(view === "duplicates"));
}
el.tabSearch.addEventListener("click", () => {
  if (location.hash.startsWith("#browse") || location.hash.startsWith("#duplicates")) {
    const q = state.query;
    history.pushState(null, "", q?.kind === "id" ? window.feedback?.hashFor(q) ?? `#similar/${q.id}` : q?.kind === "tag" ? `#tag/${encodeURIComponent(q.text)}` : location.pathname);
  }
  showView("search");
});
el.tabBrowse.addEventListener("click", () => { history.pushState(null, "", `#browse/${state.offset}`); route(); });
el.tabDups.addEventListener("click", () => { history.pushState(null, "", "#duplicates"); route(); });

async function route() {
  const browse = location.hash.match(/^#browse(?:\/(\d+))?$/);
  const similar = location.hash.match(/^#similar\/(\d+)((?:[+-]\d+)*)$/);  // +34-56: feedback.js
  const dups = location.hash.match(/^#duplicates(?:\/(exact|near|similar))?$/);
  const tag = location.hash.match(/^#tag\/(.+)$/);
  if (browse) {
    showView("browse");
    await loadPage(Number(browse[1] || 0));
  } else if (dups) {
    showView("duplicates");
    await loadDuplicates(dups[1] || "");
  } else if (tag) {
    showView("search");
    const text = decodeURIComponent(tag[1]);
    if (state.query?.kind !== "tag" || state.query.text !== text) setQueryByTag(text, false);
  } else if (similar) {
    showView("search");
    const id = Number(similar[1]);
    const refined = window.feedback?.load(id, similar[2]);
    if (state.query?.kind === "id" && state.query.id === id) { if (refined) search(); return; }
    try {
      const image = await api(`/api/images/${id}`);
      setQueryById(image.id, image.name, image.image_url, false);
    } catch (e) {
      showMessage(e.message, "error");
    }
  } else {
    showView("search");
  }
}
window.addEventListener("popstate", route);

loadStats().then(route);
