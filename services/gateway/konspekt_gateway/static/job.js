// The job view: the recording in a player, the transcript beside it (the segment being played
// highlighted, searchable), the konspekt; every time mark seeks the player. A file, not inline
// (the Content-Security-Policy); what the server tells it is in data-config on <main>. Loaded after
// common.js, whose globals (CONFIG, T, el, fmt, clock, points) it uses.
"use strict";
const player = document.getElementById("player");
const list = document.getElementById("transcript");
const box = document.getElementById("transcript-box");
const note = document.getElementById("transcript-note");
const search = document.getElementById("search");
const count = document.getElementById("search-count");
const copyButton = document.getElementById("copy");
const copyStatus = document.getElementById("copy-status");

// -- seeking: every time mark is a button ------------------------------------------------------
function seekButton(at, label) {
  const button = el("button", {type: "button", class: "seek", "data-at": at,
                               "aria-label": fmt(T.play_from, {t: clock(at)})}, label || clock(at));
  return button;
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.seek");
  if (!button) return;
  player.currentTime = Number(button.dataset.at);
  highlight();
  const playing = player.play();
  if (playing) playing.catch(() => { /* not playable yet, or autoplay refused: the seek stands */ });
});

// -- the transcript ----------------------------------------------------------------------------
let segments = [];  // {start, end, text, li, span}
let active = null;

function showTranscript(transcript) {
  list.replaceChildren();
  segments = [];
  for (const seg of transcript.segments || []) {
    const text = (seg.text || "").trim();
    if (!text) continue;
    const li = el("li", {class: "seg", "data-index": seg.index, "data-start": seg.start});
    li.appendChild(seekButton(seg.start || 0));
    const span = el("span", {class: "seg-text"}, text);
    li.appendChild(span);
    list.appendChild(li);
    segments.push({start: seg.start || 0, end: seg.end || seg.start || 0, text: text, li: li, span: span});
  }
  note.textContent = segments.length ? "" : T.no_speech;
  note.hidden = segments.length > 0;
  highlight();
}

// the segment being played: the last one starting at or before the time, while it lasts
function current(time) {
  let lo = 0, hi = segments.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (segments[mid].start <= time + 0.05) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  if (found < 0) return null;
  const seg = segments[found];
  const next = segments[found + 1];
  return time < Math.max(seg.end, seg.start + 0.5) || (next && time < next.start && time - seg.end < 1) ? seg : null;
}
function highlight() {
  const seg = current(player.currentTime);
  if (seg === active) return;
  if (active) { active.li.classList.remove("active"); active.li.removeAttribute("aria-current"); }
  active = seg;
  if (!seg) return;
  seg.li.classList.add("active");
  seg.li.setAttribute("aria-current", "true");
  if (!search.value) {  // keep it in sight inside the transcript's own scroll area only
    const top = seg.li.offsetTop - box.offsetTop;
    if (top < box.scrollTop || top + seg.li.offsetHeight > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
  }
}
for (const type of ["timeupdate", "seeked", "seeking", "loadedmetadata"]) player.addEventListener(type, highlight);

// -- search ------------------------------------------------------------------------------------
function mark(span, text, query) {
  span.replaceChildren();
  if (!query) { span.textContent = text; return; }
  const lower = text.toLocaleLowerCase();
  let from = 0;
  for (let at = lower.indexOf(query); at >= 0; at = lower.indexOf(query, from)) {
    span.appendChild(document.createTextNode(text.slice(from, at)));
    span.appendChild(el("mark", {}, text.slice(at, at + query.length)));
    from = at + query.length;
  }
  span.appendChild(document.createTextNode(text.slice(from)));
}
function runSearch() {
  const query = search.value.trim().toLocaleLowerCase();
  let n = 0;
  for (const seg of segments) {
    const hit = !query || seg.text.toLocaleLowerCase().includes(query);
    seg.li.hidden = !hit;
    mark(seg.span, seg.text, hit ? query : "");
    if (hit && query) n += 1;
  }
  count.textContent = query ? (n ? fmt(T.found, {n: n}) : T.not_found) : "";
}
search.addEventListener("input", runSearch);
search.addEventListener("keydown", (event) => {
  if (event.key === "Escape") { search.value = ""; runSearch(); }
  if (event.key === "Enter") {  // to the first match's time mark
    event.preventDefault();
    const first = segments.find((seg) => !seg.li.hidden);
    if (first) first.li.querySelector("button.seek").focus();
  }
});

// -- the konspekt ------------------------------------------------------------------------------
function stamped(at, segmentIndex, text) {
  const li = el("li");
  if (Number.isFinite(at) && !(segmentIndex < 0)) { li.appendChild(seekButton(at, "[" + clock(at) + "]")); }
  li.appendChild(document.createTextNode(" " + text));
  return li;
}
function showKonspekt(k) {
  const target = document.getElementById("konspekt");
  target.replaceChildren();
  if (k.title) target.appendChild(el("h3", {class: "h5 fw-semibold mt-3 konspekt-title"}, k.title));
  target.appendChild(el("h4", {}, T.summary));
  target.appendChild(el("p", {class: "konspekt-summary"}, k.summary));
  target.appendChild(points(T.key_points, k.key_points, (p) => stamped(p.at, p.segment_index, p.text)));
  target.appendChild(points(T.decisions, k.decisions, (p) => stamped(p.at, p.segment_index, p.text)));
  target.appendChild(points(T.action_items, k.action_items, (a) => {
    const owner = a.owner ? T.owner + ": " + a.owner + (a.owner_unconfirmed ? " (" + T.unconfirmed + ")" : "") : "";
    const extra = [owner, a.due ? T.due + ": " + a.due : ""].filter(Boolean);
    return stamped(a.at, a.segment_index, a.task + (extra.length ? " (" + extra.join(", ") + ")" : ""));
  }));
}

// -- copy: the Markdown download (the renderer's layout), fetched ahead so a click copies at once
let copyText = null;
async function prepareCopy(job) {
  const href = job.links.files["konspekt.md"] || job.links.files["konspekt.txt"];
  if (!href) return;
  try {
    const resp = await fetch(href);
    if (!resp.ok) return;
    copyText = await resp.text();
    copyButton.hidden = false;
  } catch (_) { /* no copy button then */ }
}
function copyFallback(text) {
  const area = el("textarea", {readonly: "", class: "visually-hidden"});
  area.value = text;
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok;
}
copyButton.addEventListener("click", async () => {
  let ok = false;
  try { await navigator.clipboard.writeText(copyText); ok = true; } catch (_) { ok = copyFallback(copyText); }
  copyStatus.className = "small " + (ok ? "text-success" : "text-danger");
  copyStatus.textContent = ok ? T.copied : T.copy_failed;
});

// -- the job: loaded, then followed until it ends ----------------------------------------------
const loaded = {transcript: false, konspekt: false, files: ""};
let shownVersion = null;  // konspekt_version of the konspekt shown (a run that writes it again ends with a new one)
let lastJob = null;       // the job as last fetched (edit.js reads it)
let konspektData = null;  // the konspekt as last loaded or saved (edit.js edits it)

async function json(href) {
  const resp = await fetch(href, {headers: {Accept: "application/json"}});
  if (!resp.ok) throw new Error(String(resp.status));
  return resp.json();
}
function showJob(job) {
  const status = document.getElementById("job-status");
  status.textContent = job.status_text;
  status.className = "badge " + ({done: "text-bg-success", failed: "text-bg-danger"}[job.state] || "text-bg-primary");
  document.getElementById("page").dataset.state = job.state;
  const error = document.getElementById("job-error");
  if (job.state === "failed") {
    error.replaceChildren(el("div", {class: "alert alert-danger py-2 my-2", role: "alert"},
      fmt(T.failed_reason, {stage: job.failed_stage_text || "?", reason: job.error_text})));
  } else {
    error.replaceChildren();
  }
  const files = job.files.join(" ") + "@" + job.konspekt_version;
  if (loaded.files !== files && job.files.length) {
    loaded.files = files;
    const downloads = document.getElementById("downloads");
    downloads.replaceChildren();
    for (const [file, href] of Object.entries(job.links.files)) {
      downloads.appendChild(el("a", {class: "btn btn-outline-primary btn-sm", href: href, download: "",
                                     "data-file": file}, T["file_" + file] || file));
    }
    prepareCopy(job);
  }
  document.dispatchEvent(new CustomEvent("job-shown", {detail: job}));  // resummarize.js
}
async function follow() {
  let job;
  try { job = await json(CONFIG.job); } catch (_) { setTimeout(follow, 3000); return; }
  lastJob = job;
  showJob(job);
  if (!loaded.transcript && job.links.transcript) {
    try { showTranscript(await json(job.links.transcript)); loaded.transcript = true; } catch (_) { /* next time */ }
  }
  const rewritten = job.state === "done" && shownVersion !== null && shownVersion !== job.konspekt_version;
  if ((!loaded.konspekt || rewritten) && job.links.konspekt) {
    try {
      konspektData = await json(job.links.konspekt);
      showKonspekt(konspektData);
      loaded.konspekt = true;
      shownVersion = job.konspekt_version;
    } catch (_) { /* next time */ }
  }
  if (job.state === "done" && loaded.konspekt) document.getElementById("edit").hidden = false;
  if (job.state === "failed" || job.state === "done") {
    if (!loaded.transcript) { note.textContent = ""; }
    if (!loaded.konspekt) { document.getElementById("konspekt").replaceChildren(); }
    return;
  }
  if (!loaded.transcript) note.textContent = T.not_ready;
  setTimeout(follow, 2000);
}
follow();
