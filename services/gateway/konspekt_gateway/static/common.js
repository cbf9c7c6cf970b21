// What the list page (page.js) and the job view (job.js, edit.js, resummarize.js) share, loaded
// before them: the page's config and texts, and the helpers that build the konspekt. A file, not
// inline: the Content-Security-Policy allows scripts from this origin only. What the server tells
// a page (the texts in its language, the API's addresses, ...) is in data-config on <main>.
"use strict";
const CONFIG = JSON.parse(document.getElementById("page").dataset.config);
const T = CONFIG.texts;

// attrs become attributes, except "width" (a percentage): set through the style object, which
// the CSP allows (a style="..." attribute it would block)
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "width") node.style.width = v; else node.setAttribute(k, v);
  }
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}
function fmt(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, k) => values[k]);
}
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return (h ? h + ":" + two(m) : String(m)) + ":" + two(r);
}
// A konspekt's list (key points, decisions, tasks) under its heading; "nothing" when empty.
function points(title, items, render) {
  const box = el("div");
  box.appendChild(el("h4", {}, title));
  if (!items || !items.length) { box.appendChild(el("p", {class: "text-secondary small"}, T.nothing)); return box; }
  const ul = el("ul", {class: "mb-1"});
  for (const item of items) ul.appendChild(render(item));
  box.appendChild(ul);
  return box;
}
