// "Summarize again" on the job view: style, language of the konspekt and the person's
// instruction, sent with POST …/resummarize; the job then runs the summarizer and the renderer
// again and the page follows it like any run (job.js's follow), showing the new konspekt when it
// is done. Loaded after common.js, job.js and edit.js, whose globals (CONFIG, T, fmt; follow,
// showJob, lastJob, loaded) it uses.
"use strict";
const againButton = document.getElementById("again");
const againForm = document.getElementById("again-form");
const againStyle = document.getElementById("again-style");
const againLanguage = document.getElementById("again-language");
const againInstruction = document.getElementById("again-instruction");
const againCount = document.getElementById("again-count");
const againError = document.getElementById("again-error");
const againSubmit = document.getElementById("again-submit");
const againStatus = document.getElementById("again-status");
const AGAIN_MAX = Number(againInstruction.getAttribute("maxlength")) || 500;

function countAgain() {
  againCount.textContent = fmt(T.again_chars, {n: againInstruction.value.length, max: AGAIN_MAX});
}
function openAgain() {
  if (lastJob) {
    againStyle.value = lastJob.style;
    againLanguage.value = ["ru", "en"].includes(lastJob.konspekt_language) ? lastJob.konspekt_language : "";
    if (!againInstruction.value) againInstruction.value = lastJob.instruction || "";  // the wish of the run before
  }
  againError.textContent = "";
  countAgain();
  againForm.hidden = false;
  againButton.setAttribute("aria-expanded", "true");
  againStyle.focus();
}
function closeAgain() {
  againForm.hidden = true;
  againButton.setAttribute("aria-expanded", "false");
  if (!againButton.hidden) againButton.focus();
}

document.addEventListener("job-shown", (event) => {
  const job = event.detail;
  const ended = job.state === "done" || job.state === "failed";
  againButton.hidden = !(ended && job.links.transcript) || !againForm.hidden;
  if (!ended && job.run === "resummarize") {
    const pct = job.progress ? " " + Math.round(job.progress * 100) + "%" : "";
    againStatus.textContent = fmt(T.again_running, {message: (job.message_text || job.status_text) + pct});
  } else {
    againStatus.textContent = "";
  }
});
againButton.addEventListener("click", () => { againButton.hidden = true; openAgain(); });
document.getElementById("again-cancel").addEventListener("click", () => { closeAgain(); againButton.hidden = false; againButton.focus(); });
againInstruction.addEventListener("input", countAgain);
againForm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") { event.stopPropagation(); closeAgain(); againButton.hidden = false; againButton.focus(); }
});
againForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  againSubmit.disabled = true;
  againSubmit.textContent = T.again_sending;
  againError.textContent = "";
  try {
    const resp = await fetch(CONFIG.job + "/resummarize", {
      method: "POST", headers: {"Content-Type": "application/json", Accept: "application/json"},
      body: JSON.stringify({style: againStyle.value, language: againLanguage.value,
                            instruction: againInstruction.value}),
    });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error ? body.error.message : String(resp.status));
    againForm.hidden = true;
    againButton.setAttribute("aria-expanded", "false");
    document.getElementById("edit").hidden = true;  // until the new konspekt is there
    lastJob = body;
    showJob(body);
    setTimeout(follow, 300);  // follow the new run until it ends (job.js)
  } catch (exc) {
    againError.textContent = T.again_failed + ": " + (exc.message || T.network_error);
    againSubmit.focus();
  } finally {
    againSubmit.disabled = false;
    againSubmit.textContent = T.again_submit;
  }
});
