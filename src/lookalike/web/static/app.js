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
  card: $("card"),
};

const state = {
  stats: null,
  query: null,     // {kind: "file", file, name}, {kind: "id", id, name, imageUrl} or {kind: "tag", text}
  crop: null,      // [x0, y0, x1, y1] as fractions of the query image, or null
  objectUrl: null,
  offset: 0,
  searchSeq: 0,    // answers to superseded searches are dropped
};

// ---- talking to the API -------------------------------------------------------------------
async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(path, options);
  } catch {
    throw new Error("Cannot reach the Lookalike server. Is `lookalike serve` still running?");
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `${res.status} ${res.statusText}`;
    throw new Error(detail);
  }
  return body;
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
  } catch (e) {
    showMessage(e.message, "error");
  }
}

// ---- cards ------------------------------------------------------------------------------------
function makeCard(item, score) {
  const li = el.card.content.firstElementChild.cloneNode(true);
  const button = li.querySelector(".card");
  button.dataset.id = item.id;
  button.title = `${item.name}${score === undefined ? "" : ` · score ${score.toFixed(4)}`} — click for more like this`;
  const img = li.querySelector("img");
  img.src = item.thumb_url;
  img.alt = item.name;
  img.addEventListener("error", () => { img.alt = `${item.name} (file missing)`; }, { once: true });
  li.querySelector(".name").textContent = item.name;
  const s = li.querySelector(".score");
  if (score === undefined) {
    s.remove();
  } else {
    s.textContent = score.toFixed(3);
    if (score >= 0.9) s.classList.add("high");
  }
  button.addEventListener("click", () => {
    showView("search");
    setQueryById(item.id, item.name, item.image_url, true);
  });
  return li;
}

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
  el.summary.textContent = "Searching…";
  el.results.setAttribute("aria-busy", "true");
  const t0 = performance.now();
  try {
    const data = await api(url, options);
    if (seq !== state.searchSeq) return;
    const total = Math.round(performance.now() - t0);
    clearMessage();
    renderResults(data, total);
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

function renderResults(data, totalMs) {
  el.placeholder.hidden = true;
  el.results.replaceChildren(...data.results.map((hit) => makeCard(hit, hit.score)));
  const n = data.results.length;
  const what = data.crop ? " for the selected region" : "";
  el.summary.replaceChildren();
  const strong = document.createElement("strong");
  const tag = state.query && state.query.kind === "tag" ? state.query.text : null;
  strong.textContent = tag ? `${n} image${n === 1 ? "" : "s"} tagged “${tag}”` : `${n} result${n === 1 ? "" : "s"}${what}`;
  el.summary.append(strong, tag ? " · score = the classifier's confidence" : "",
                    ` · search ${data.took_ms.toFixed(0)} ms, ${totalMs} ms with transfer`);
  el.summary.dataset.tookMs = data.took_ms;
  if (n === 0 && tag) {
    el.summary.append(" · no image shows it");
  } else if (n === 0 && state.stats && state.stats.images > 0) {
    el.summary.append(" · nothing in the library scored high enough");
  }
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
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.items.length;
    el.pageInfo.textContent = page.total ? `${first}–${last} of ${page.total.toLocaleString()}` : "No images yet";
    el.prev.disabled = page.offset === 0;
    el.next.disabled = last >= page.total;
  } catch (e) {
    showMessage(e.message, "error");
  }
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
  el.dupsSummary.append(" · the first image of each group has the most pixels; score = similarity to it");
  el.dups.replaceChildren(...report.groups.map((g) => {
    const li = document.createElement("li");
    li.className = "dup-group";
    li.dataset.tier = g.tier;
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
    grid.append(...g.members.map((m, i) => {
      const card = makeCard(m, m.score);
      if (i === 0) card.querySelector(".card").classList.add("keep");
      return card;
    }));
    li.append(head, grid);
    return li;
  }));
}
el.dupsTier.addEventListener("change", () => {
  history.pushState(null, "", el.dupsTier.value ? `#duplicates/${el.dupsTier.value}` : "#duplicates");
  route();
});

// ---- views and the address bar ------------------------------------------------------------------------
function showView(view) {
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
    history.pushState(null, "", q?.kind === "id" ? `#similar/${q.id}` : q?.kind === "tag" ? `#tag/${encodeURIComponent(q.text)}` : location.pathname);
  }
  showView("search");
});
el.tabBrowse.addEventListener("click", () => { history.pushState(null, "", `#browse/${state.offset}`); route(); });
el.tabDups.addEventListener("click", () => { history.pushState(null, "", "#duplicates"); route(); });

async function route() {
  const browse = location.hash.match(/^#browse(?:\/(\d+))?$/);
  const similar = location.hash.match(/^#similar\/(\d+)$/);
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
    if (state.query?.kind === "id" && state.query.id === id) return;
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
