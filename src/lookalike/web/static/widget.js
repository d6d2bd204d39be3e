/* Lookalike "similar products" widget.
 *
 * On a shop's page:
 *   <div data-lookalike-similar="SKU-123" data-k="6"></div>
 *   <script src="https://search.example.com/widget.js" async></script>
 * The server must list the shop's origin with `lookalike serve --cors-origin https://shop.example`.
 * Theme with data attributes: data-title, data-bg, data-fg, data-accent, data-font (system,
 * serif, sans-serif, monospace), data-radius (px), data-columns, data-currency; rules with
 * data-colour (any|same|0..1), data-collapse (a field), data-distinct (true).
 * The iframe page /widget/similar/{id} is this same script over one element.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? new URL(script.src, document.baseURI).origin : window.location.origin;
  var COLOUR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,20})$/;
  var FONTS = { system: "system-ui, sans-serif", serif: "Georgia, serif", "sans-serif": "Helvetica, Arial, sans-serif",
                monospace: "ui-monospace, monospace" };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function theme(host, d) {
    var set = function (name, value) { host.style.setProperty(name, value); };
    ["bg", "fg", "accent"].forEach(function (key) {
      if (d[key] && COLOUR.test(d[key])) set("--lk-" + key, d[key]);
    });
    if (d.font && FONTS[d.font]) set("--lk-font", FONTS[d.font]);
    var radius = parseInt(d.radius, 10);
    if (radius >= 0 && radius <= 32) set("--lk-radius", radius + "px");
    var columns = parseInt(d.columns, 10);
    if (columns >= 1 && columns <= 8) set("--lk-columns", String(columns));
  }

  function price(fields, currency) {
    var p = fields.price;
    if (typeof p !== "number") return null;
    var cur = currency || (typeof fields.currency === "string" ? fields.currency : "");
    try {
      if (/^[A-Z]{3}$/.test(cur)) return new Intl.NumberFormat(undefined, { style: "currency", currency: cur }).format(p);
    } catch (e) { /* unknown currency code: plain number below */ }
    return (cur ? cur + " " : "") + p.toFixed(2);
  }

  function card(hit, d) {
    var f = hit.fields || {};
    var link = typeof f.url === "string" && /^https?:\/\//i.test(f.url) ? f.url : null;
    var a = el(link ? "a" : "div", "lk-card");
    if (link) { a.href = link; a.target = "_top"; a.rel = "noopener"; }
    a.dataset.item = hit.item || "";
    var name = typeof f.name === "string" ? f.name : (typeof f.title === "string" ? f.title : (hit.item || ""));
    var img = el("img");
    img.src = base + hit.image_url;
    img.alt = name;
    img.loading = "lazy";
    a.appendChild(img);
    a.appendChild(el("div", "lk-name", name));
    var p = price(f, d.currency);
    if (p !== null) a.appendChild(el("div", "lk-price", p));
    return a;
  }

  function render(host) {
    if (host.dataset.lookalikeDone) return;
    host.dataset.lookalikeDone = "1";
    var d = host.dataset;
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    // A stylesheet file rather than a <style> element: pages with a strict CSP (ours) allow it.
    var style = el("link");
    style.rel = "stylesheet";
    style.href = base + "/static/widget.css";
    root.appendChild(style);
    theme(host, d);
    var box = el("div", "lk");
    box.setAttribute("part", "widget");
    root.appendChild(box);
    if (d.title !== "") box.appendChild(el("h2", null, d.title || "Similar products"));
    var grid = el("div", "lk-grid");
    box.appendChild(grid);
    var params = new URLSearchParams({ k: String(Math.min(Math.max(parseInt(d.k, 10) || 6, 1), 24)) });
    if (d.colour) params.set("colour", d.colour);
    if (d.collapse) params.set("collapse", d.collapse);
    if (d.distinct === "true") params.set("distinct", "true");
    if (d.where) params.set("where", d.where);
    var url = base + "/api/items/" + encodeURIComponent(d.lookalikeSimilar) + "/similar?" + params;
    fetch(url, { mode: "cors", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (data) {
        if (!data.results.length) grid.appendChild(el("div", "lk-empty", "No similar products."));
        data.results.forEach(function (hit) { grid.appendChild(card(hit, d)); });
        host.dataset.lookalikeState = "ready";
        host.dispatchEvent(new CustomEvent("lookalike:ready", { detail: data }));
      })
      .catch(function () {
        // A shop page shows nothing rather than an error box; the state says why for developers.
        box.hidden = true;
        host.dataset.lookalikeState = "error";
      });
  }

  function start() {
    var hosts = document.querySelectorAll("[data-lookalike-similar]");
    for (var i = 0; i < hosts.length; i++) render(hosts[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
