// Relevance feedback: thumbs up / down on each result refine an image query in place.
// The positives and negatives are sent to POST /api/search as ids (JSON `ids` / `not_ids`
// for an indexed query image, form fields `ids` / `not_ids` next to an uploaded one), shown
// as removable chips, and kept in the address for indexed queries: #similar/12+34-56 is
// "like 12 and 34, not like 56", so back, forward and reload give the same search.
// app.js calls feedback.amend() when it builds a search (then feedback.active(): does it refine
// this query?), feedback.decorate() when it shows results, and feedback.load() when the address
// changes; everything else lives here.
"use strict";

const feedback = (() => {
  const fb = { base: null, pos: [], neg: [], names: new Map() };  // base: the query the lists refine

  function baseOf(q) {
    if (!q || q.kind === "tag") return null;
    return q.kind === "id" ? `id:${q.id}` : q.file;  // an upload: the File object itself
  }

  function active() { return fb.pos.length > 0 || fb.neg.length > 0; }

  function suffix() { return fb.pos.map((i) => `+${i}`).join("") + fb.neg.map((i) => `-${i}`).join(""); }

  // The address for an indexed query, e.g. #similar/12+34-56.
  function hashFor(q) { return q && q.kind === "id" ? `#similar/${q.id}${baseOf(q) === fb.base ? suffix() : ""}` : null; }

  // The lists from the address ("+34-56"); true when they differ from the current ones.
  function load(id, text) {
    const pos = [], neg = [];
    for (const m of (text || "").matchAll(/([+-])(\d+)/g)) (m[1] === "+" ? pos : neg).push(Number(m[2]));
    const changed = fb.base !== `id:${id}` || pos.join() !== fb.pos.join() || neg.join() !== fb.neg.join();
    Object.assign(fb, { base: `id:${id}`, pos, neg });
    return changed;
  }

  // Add this query's positives and negatives to the request app.js built.
  function amend(q, options) {
    const base = baseOf(q);
    if (base !== fb.base) Object.assign(fb, { base, pos: [], neg: [] });  // a new query starts afresh
    renderChips();
    if (!base || !active()) return options;
    if (state.crop) {  // a region combines with nothing else: feedback searches the whole image
      state.crop = null;
      el.cropBox.hidden = true;
      el.clearCrop.hidden = true;
    }
    if (q.kind === "id") {
      const body = { ids: [q.id, ...fb.pos] };
      if (fb.neg.length) body.not_ids = fb.neg;
      return { ...options, body: JSON.stringify(body) };
    }
    options.body.delete("crop");
    if (fb.pos.length) options.body.set("ids", fb.pos.join(","));
    if (fb.neg.length) options.body.set("not_ids", fb.neg.join(","));
    return options;
  }

  function vote(id, name, up) {
    const base = baseOf(state.query);
    if (!base) return;
    if (base !== fb.base) Object.assign(fb, { base, pos: [], neg: [] });
    fb.pos = fb.pos.filter((i) => i !== id);
    fb.neg = fb.neg.filter((i) => i !== id);
    (up ? fb.pos : fb.neg).push(id);
    fb.names.set(id, name);
    changed();
  }

  function remove(id) {
    fb.pos = fb.pos.filter((i) => i !== id);
    fb.neg = fb.neg.filter((i) => i !== id);
    changed();
  }

  function changed() {
    const hash = hashFor(state.query);
    if (hash && location.hash !== hash) history.pushState(null, "", hash);
    search();
  }

  // Thumbs up (+) and down (−) on each result card of an image query: plain glyphs that every
  // font has (emoji fonts are missing on many Linux desktops and in headless browsers).
  function decorate(grid, results) {
    if (!baseOf(state.query)) return;
    const byId = new Map(results.map((r) => [r.id, r]));
    for (const li of grid.querySelectorAll(".card-item")) {
      const id = Number(li.querySelector(".card").dataset.id);
      const name = byId.get(id)?.name || `image ${id}`;
      const bar = document.createElement("div");
      bar.className = "fb-votes";
      for (const [up, text, label] of [[true, "+", "More like this"], [false, "−", "Less like this"]]) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = up ? "fb-up" : "fb-down";
        b.textContent = text;
        b.title = `${label}: refine the results`;
        b.setAttribute("aria-label", `${label} (${name})`);
        b.addEventListener("click", (e) => { e.stopPropagation(); vote(id, name, up); });
        bar.append(b);
      }
      li.append(bar);
    }
  }

  // The current positives and negatives, above the results; × removes one.
  function renderChips() {
    let box = document.getElementById("fb-chips");
    if (!box) {
      box = document.createElement("div");
      box.id = "fb-chips";
      box.className = "fb-chips";
      box.setAttribute("aria-label", "Refinements");
      el.summary.before(box);
    }
    box.replaceChildren();
    box.hidden = !active() || !baseOf(state.query);
    for (const [list, kind, sign] of [[fb.pos, "up", "+"], [fb.neg, "down", "−"]]) {
      for (const id of list) {
        const chip = document.createElement("span");
        chip.className = `fb-chip ${kind}`;
        chip.dataset.id = id;
        const img = document.createElement("img");
        img.src = `/api/images/${id}/thumb`;
        img.alt = "";
        const label = document.createElement("span");
        label.textContent = `${sign} ${fb.names.get(id) || `image ${id}`}`;
        if (!fb.names.has(id)) {  // after a reload or a shared link: ask for the name once
          fb.names.set(id, `image ${id}`);
          api(`/api/images/${id}`).then((image) => {
            fb.names.set(id, image.name);
            label.textContent = `${sign} ${image.name}`;
          }).catch(() => {});  // an unknown id: the search itself says so
        }
        const x = document.createElement("button");
        x.type = "button";
        x.className = "fb-remove";
        x.textContent = "×";
        x.setAttribute("aria-label", `Remove ${fb.names.get(id) || `image ${id}`} from the refinements`);
        x.addEventListener("click", () => remove(id));
        chip.append(img, label, x);
        box.append(chip);
      }
    }
  }

  return { amend, decorate, load, hashFor, active, state: fb };
})();
window.feedback = feedback;
