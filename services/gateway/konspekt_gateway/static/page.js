// The page's script: uploads, and the job list polled from the API. A file, not inline: the
// Content-Security-Policy allows scripts from this origin only. What the server tells it (the
// texts in the page's language, the API's address, the limits) is in data-config on <main>.
// Loaded after common.js, whose globals (CONFIG, T, el, fmt, clock, points) it uses.
"use strict";
const LANG = CONFIG.lang;
const API = CONFIG.api;
const MAX_MB = CONFIG.max_upload_mb;
const MAX_BYTES = MAX_MB * 1024 * 1024;
const EXTENSIONS = new Set(CONFIG.extensions);

function duration(seconds) {
  return seconds < 90 ? fmt(T.seconds, {n: Math.ceil(seconds)}) : fmt(T.minutes, {n: Math.ceil(seconds / 60)});
}
function when(iso) {
  return new Date(iso).toLocaleString(LANG === "ru" ? "ru-RU" : "en-GB",
    {day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"});
}

// -- upload ------------------------------------------------------------------------------------
const form = document.getElementById("upload-form");
const input = document.getElementById("file");
const drop = document.getElementById("drop");
const message = document.getElementById("upload-message");
const submit = document.getElementById("submit");
const uploads = document.getElementById("uploads");
let dropped = null;

function showMessage(text, isError) {
  message.textContent = text;
  message.className = "small " + (isError ? "text-danger" : "text-success");
}
function chosenFiles() { return dropped || Array.from(input.files); }
function showChosen() {
  const files = chosenFiles();
  document.getElementById("chosen").textContent =
    files.length ? fmt(T.chosen, {n: files.length}) + ": " + files.map((f) => f.name).join(", ") : "";
}
function problem(file) {
  const ext = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  const media = /^(video|audio)\//.test(file.type) || EXTENSIONS.has(ext);
  if (!media) return fmt(T.not_media, {name: file.name});
  if (file.size > MAX_BYTES) return fmt(T.too_big, {name: file.name, mb: MAX_MB});
  return null;
}

input.addEventListener("change", () => { dropped = null; showChosen(); });
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("dragover"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove("dragover"); });
}
drop.addEventListener("drop", (e) => {
  dropped = Array.from(e.dataTransfer.files);
  showChosen();
});

function uploadOne(file, options) {
  const row = el("li", {class: "mb-2 upload-item"});
  row.appendChild(el("div", {class: "small upload-name"}, file.name));
  const outer = el("div", {class: "progress", role: "progressbar", "aria-label": T.uploading,
                           "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0});
  const bar = el("div", {class: "progress-bar upload-bar", width: "0%"}, "0%");
  outer.appendChild(bar);
  row.appendChild(outer);
  const note = el("div", {class: "small upload-note"});
  row.appendChild(note);
  uploads.prepend(row);
  return new Promise((resolve) => {
    const params = new URLSearchParams({filename: file.name, ...options});
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API + "/jobs?" + params.toString());
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.floor((e.loaded / e.total) * 100);
      bar.style.width = pct + "%";
      bar.textContent = pct + "%";
      outer.setAttribute("aria-valuenow", pct);
    };
    xhr.onload = () => {
      if (xhr.status === 201) {
        bar.style.width = "100%"; bar.textContent = "100%";
        bar.classList.add("bg-success");
        note.className = "small text-success upload-note";
        note.textContent = T.uploaded;
        setTimeout(() => row.remove(), 4000);
        resolve(true);
      } else {
        let reason = xhr.statusText;
        try { reason = JSON.parse(xhr.responseText).error.message; } catch (_) { /* not JSON */ }
        bar.classList.add("bg-danger");
        note.className = "small text-danger upload-note";
        note.textContent = T.upload_failed + ": " + reason;
        resolve(false);
      }
      refresh();
    };
    xhr.onerror = () => {
      bar.classList.add("bg-danger");
      note.className = "small text-danger upload-note";
      note.textContent = T.upload_failed + ": " + T.network_error;
      resolve(false);
    };
    xhr.send(file);
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = chosenFiles();
  if (!files.length) { showMessage(T.choose_file, true); return; }
  const problems = files.map(problem).filter(Boolean);
  if (problems.length) { showMessage(problems.join("; "), true); return; }
  const options = {language: document.getElementById("language").value,
                   style: document.getElementById("style").value};
  submit.disabled = true;
  showMessage(T.uploading, false);
  let ok = 0;
  for (const file of files) { if (await uploadOne(file, options)) ok += 1; }
  submit.disabled = false;
  if (ok === files.length) showMessage(T.uploaded, false); else showMessage("", false);
  form.reset();
  dropped = null;
  showChosen();
});

// -- the job list (polled; each card re-drawn only when its job changed) ---------------------
const konspekts = {};
const signatures = {};
const cards = {};

function stageBadges(job) {
  const box = el("div", {class: "stage-badges d-flex flex-wrap gap-1 my-1"});
  const colors = {pending: "text-bg-light border", running: "text-bg-primary", done: "text-bg-success",
                  failed: "text-bg-danger"};
  for (const stage of job.stages) {
    let text = stage.name + ": " + T["stage_" + stage.status];
    if (stage.status === "running" && stage.progress !== null) text += " " + Math.round(stage.progress * 100) + "%";
    box.appendChild(el("span", {class: "badge " + colors[stage.status], "data-stage": stage.stage,
                                "data-status": stage.status}, text));
  }
  return box;
}

function stamped(at, text) {
  const li = el("li");
  li.appendChild(el("span", {class: "ts text-secondary me-1"}, "[" + clock(at) + "]"));
  li.appendChild(document.createTextNode(text));
  return li;
}

function konspektView(k) {
  const box = el("div", {class: "konspekt border-top mt-2 pt-2"});
  if (k.title) box.appendChild(el("h3", {class: "h5 fw-semibold konspekt-title"}, k.title));
  box.appendChild(el("h4", {}, T.summary));
  box.appendChild(el("p", {class: "konspekt-summary"}, k.summary));
  box.appendChild(points(T.key_points, k.key_points, (p) => stamped(p.at, p.text)));
  box.appendChild(points(T.decisions, k.decisions, (p) => stamped(p.at, p.text)));
  box.appendChild(points(T.action_items, k.action_items, (a) => {
    // an owner the transcript does not say as a name is shown, marked (owner_unconfirmed)
    const owner = a.owner ? T.owner + ": " + a.owner + (a.owner_unconfirmed ? " (" + T.unconfirmed + ")" : "") : "";
    const extra = [owner, a.due ? T.due + ": " + a.due : ""].filter(Boolean);
    return stamped(a.at, a.task + (extra.length ? " (" + extra.join(", ") + ")" : ""));
  }));
  return box;
}

async function loadKonspekt(job, card) {
  if (!konspekts[job.id]) {
    try {
      const resp = await fetch(job.links.konspekt);
      if (!resp.ok) return;
      konspekts[job.id] = konspektView(await resp.json());
    } catch (_) { return; }
  }
  const slot = card.querySelector(".konspekt-slot");
  if (slot && !slot.firstChild) slot.appendChild(konspekts[job.id]);
}

function jobCard(job) {
  const card = el("article", {class: "card job", "data-job": job.id, "data-state": job.state});
  const body = el("div", {class: "card-body"});
  card.appendChild(body);
  const head = el("div", {class: "d-flex flex-wrap justify-content-between gap-2"});
  const name = el("div");
  name.appendChild(el("span", {class: "font-monospace small text-secondary me-2 job-id"}, job.short_id));
  name.appendChild(el("strong", {class: "job-file"}, job.filename));
  head.appendChild(name);
  const badge = {done: "text-bg-success", failed: "text-bg-danger"}[job.state] || "text-bg-primary";
  head.appendChild(el("span", {class: "badge job-status " + badge}, job.status_text));
  body.appendChild(head);
  body.appendChild(el("div", {class: "small text-secondary"},
    T.uploaded_at + ": " + when(job.created_at) + " · " + T.expires_at + ": " + when(job.expires_at)));
  body.appendChild(stageBadges(job));

  if (job.queue_position) {
    body.appendChild(el("div", {class: "small job-queue"}, fmt(T.in_queue, {n: job.queue_position})));
  }
  if (job.state !== "done" && job.state !== "failed" && job.state !== "queued") {
    const pct = Math.round((job.progress || 0) * 100);
    const outer = el("div", {class: "progress mt-1", role: "progressbar", "aria-valuenow": pct,
                             "aria-valuemin": 0, "aria-valuemax": 100});
    outer.appendChild(el("div", {class: "progress-bar progress-bar-striped progress-bar-animated job-progress",
                                 width: pct + "%"}, pct + "%"));
    body.appendChild(outer);
    const line = [job.message_text, job.eta_seconds !== null ? fmt(T.eta, {t: duration(job.eta_seconds)}) : ""];
    body.appendChild(el("div", {class: "small text-secondary"}, line.filter(Boolean).join(" · ")));
  }
  if (job.state === "failed") {
    body.appendChild(el("div", {class: "alert alert-danger py-2 my-2 job-error", role: "alert"},
      fmt(T.failed_reason, {stage: job.failed_stage_text || "?", reason: job.error_text})));
  }
  // one note is shown as it is; several fold under a count (the checks can write a dozen)
  const warnings = job.warnings_text || [];
  if (warnings.length === 1) {
    body.appendChild(el("div", {class: "small text-warning-emphasis job-warning"}, warnings[0]));
  } else if (warnings.length > 1) {
    const notes = el("details", {class: "small text-warning-emphasis job-warnings"});
    notes.appendChild(el("summary", {}, fmt(T.notes, {n: warnings.length})));
    const list = el("ul", {class: "mb-0"});
    for (const warning of warnings) list.appendChild(el("li", {}, warning));
    notes.appendChild(list);
    body.appendChild(notes);
  }
  if (job.state === "done") {
    const links = el("div", {class: "d-flex flex-wrap gap-1 mt-2 job-downloads"});
    for (const [file, href] of Object.entries(job.links.files)) {
      links.appendChild(el("a", {class: "btn btn-outline-primary btn-sm", href: href, download: "",
                                 "data-file": file}, T["file_" + file] || file));
    }
    body.appendChild(links);
    body.appendChild(el("div", {class: "konspekt-slot"}));
  }
  // the job's own page: the recording beside its transcript, every time mark seeks it
  body.appendChild(el("a", {class: "btn btn-primary btn-sm mt-2 me-1 job-open", href: job.links.page}, T.open));
  const remove = el("button", {type: "button", class: "btn btn-outline-danger btn-sm mt-2 job-delete"}, T.delete);
  remove.addEventListener("click", async () => {
    if (!confirm(T.confirm_delete)) return;
    await fetch(job.links.self, {method: "DELETE"});
    refresh();
  });
  body.appendChild(remove);
  return card;
}

function signature(job) {
  const eta = job.eta_seconds === null ? "" : Math.round(job.eta_seconds / 5);
  return [job.state, job.status_text, job.progress, job.queue_position, job.message_text, eta,
          job.error_text, job.files.length, LANG].join("|");
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const resp = await fetch(API + "/jobs", {headers: {Accept: "application/json"}});
    if (!resp.ok) return;
    const data = await resp.json();
    const list = document.getElementById("jobs");
    const seen = new Set();
    let previous = null;
    for (const job of data.jobs) {
      seen.add(job.id);
      const sig = signature(job);
      let card = cards[job.id];
      if (!card || signatures[job.id] !== sig) {
        const fresh = jobCard(job);
        if (card) card.replaceWith(fresh);
        card = cards[job.id] = fresh;
        signatures[job.id] = sig;
      }
      if (previous ? previous.nextSibling !== card : list.firstChild !== card) {
        if (previous) previous.after(card); else list.prepend(card);
      }
      previous = card;
      if (job.state === "done") loadKonspekt(job, card);
    }
    for (const id of Object.keys(cards)) {
      if (!seen.has(id)) { cards[id].remove(); delete cards[id]; delete signatures[id]; }
    }
    document.getElementById("no-jobs").classList.toggle("d-none", data.jobs.length > 0);
  } catch (_) {
    /* offline for a moment: the next poll tries again */
  } finally {
    refreshing = false;
  }
}

refresh();
setInterval(refresh, 1500);
