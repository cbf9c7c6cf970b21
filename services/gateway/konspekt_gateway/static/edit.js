// Editing the konspekt on the job view: title, summary, each key point, decision and task (who,
// due); items are added at the player's current moment and removed. Saved with
// PUT …/konspekt: the server checks it, the renderer makes the documents again. Loaded after
// common.js and job.js, whose globals (el, fmt, clock, T; seekButton, showKonspekt, prepareCopy,
// player, current, konspektData, lastJob) it uses.
"use strict";
const editButton = document.getElementById("edit");
const editor = document.getElementById("editor");
const konspektBox = document.getElementById("konspekt");

function field(label, input) {
  const id = "edit-" + Math.random().toString(36).slice(2, 9);
  input.id = input.id || id;
  const box = el("div", {class: "mb-2"});
  box.appendChild(el("label", {class: "form-label small mb-0", for: input.id}, label));
  box.appendChild(input);
  return box;
}
function textInput(value, label, cls) {
  const input = el("input", {type: "text", class: "form-control form-control-sm " + cls, "aria-label": label});
  input.value = value || "";
  return input;
}
function removeButton(row) {
  const button = el("button", {type: "button", class: "btn btn-outline-danger btn-sm remove", "aria-label": T.remove}, "×");
  button.title = T.remove;
  button.addEventListener("click", () => {
    const list = row.parentElement;
    row.remove();
    const next = list.querySelector("input") || list.parentElement.querySelector("button.add");
    if (next) next.focus();
  });
  return button;
}
function itemRow(kind, item) {
  const row = el("li", {class: "edit-item d-flex flex-wrap align-items-center gap-1 mb-1",
                        "data-at": item.at || 0, "data-segment": item.segment_index ?? -1});
  if (!((item.segment_index ?? -1) < 0)) row.appendChild(seekButton(item.at || 0, "[" + clock(item.at) + "]"));
  if (kind === "action_items") {
    row.appendChild(textInput(item.task, T.task_label, "item-text edit-task flex-grow-1"));
    const owner = textInput(item.owner, T.who_label, "edit-owner w-auto");
    owner.dataset.original = item.owner || "";
    owner.dataset.unconfirmed = item.owner_unconfirmed ? "1" : "";
    owner.placeholder = T.who_label;
    row.appendChild(owner);
    const due = textInput(item.due, T.due_label, "edit-due w-auto");
    due.placeholder = T.due_label;
    row.appendChild(due);
  } else {
    row.appendChild(textInput(item.text, T.item_text, "item-text flex-grow-1"));
  }
  row.appendChild(removeButton(row));
  return row;
}
function section(kind, title, items) {
  const box = el("fieldset", {class: "mb-3", "data-list": kind});
  box.appendChild(el("legend", {class: "h6 mb-1"}, title));
  const list = el("ol", {class: "list-unstyled mb-1 edit-list"});
  for (const item of items || []) list.appendChild(itemRow(kind, item));
  box.appendChild(list);
  const add = el("button", {type: "button", class: "btn btn-outline-secondary btn-sm add"});
  const label = () => { add.textContent = fmt(T.add_at, {t: clock(player.currentTime)}); };
  label();  // the moment it adds at, told again whenever it is about to be used
  for (const type of ["focus", "mouseenter"]) add.addEventListener(type, label);
  add.addEventListener("click", () => {
    const seg = current(player.currentTime);
    const at = Math.floor(player.currentTime * 10) / 10;
    const row = itemRow(kind, {at: at, segment_index: seg ? Number(seg.li.dataset.index) : -1});
    list.appendChild(row);
    row.querySelector("input").focus();
  });
  box.appendChild(add);
  return box;
}

function openEditor() {
  const k = konspektData;
  editor.replaceChildren();
  const title = textInput(k.title, T.title_label, "");
  title.id = "edit-title";
  editor.appendChild(field(T.title_label, title));
  const summary = el("textarea", {class: "form-control form-control-sm", rows: 4, id: "edit-summary"});
  summary.value = k.summary || "";
  editor.appendChild(field(T.summary, summary));
  editor.appendChild(section("key_points", T.key_points, k.key_points));
  editor.appendChild(section("decisions", T.decisions, k.decisions));
  editor.appendChild(section("action_items", T.action_items, k.action_items));
  editor.appendChild(el("div", {id: "edit-error", class: "small text-danger mb-2", role: "alert"}));
  const buttons = el("div", {class: "d-flex gap-1"});
  buttons.appendChild(el("button", {type: "submit", class: "btn btn-primary btn-sm", id: "save"}, T.save));
  const cancel = el("button", {type: "button", class: "btn btn-outline-secondary btn-sm", id: "cancel"}, T.cancel);
  cancel.addEventListener("click", closeEditor);
  buttons.appendChild(cancel);
  editor.appendChild(buttons);
  konspektBox.hidden = true;
  editor.hidden = false;
  editButton.hidden = true;
  title.focus();
}
function closeEditor() {
  editor.hidden = true;
  editor.replaceChildren();
  konspektBox.hidden = false;
  editButton.hidden = false;
  editButton.focus();
}

function collect() {
  const rows = (kind) => Array.from(editor.querySelectorAll(`fieldset[data-list="${kind}"] li.edit-item`));
  const place = (row) => ({at: Number(row.dataset.at), segment_index: Number(row.dataset.segment)});
  const points = (kind) => rows(kind)
    .map((row) => ({text: row.querySelector(".item-text").value, ...place(row)}))
    .filter((p) => p.text.trim());
  const actions = rows("action_items").map((row) => {
    const owner = row.querySelector(".edit-owner");
    return {task: row.querySelector(".edit-task").value, owner: owner.value,
            due: row.querySelector(".edit-due").value, ...place(row),
            // a person who sets the owner confirms it; one left as it was keeps its mark
            owner_unconfirmed: Boolean(owner.dataset.unconfirmed) && owner.value === owner.dataset.original};
  }).filter((a) => a.task.trim() || a.owner.trim() || a.due.trim());
  return {title: editor.querySelector("#edit-title").value, summary: editor.querySelector("#edit-summary").value,
          key_points: points("key_points"), decisions: points("decisions"), action_items: actions};
}

editButton.addEventListener("click", openEditor);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !editor.hidden && event.target !== search) closeEditor();
});
editor.addEventListener("submit", async (event) => {
  event.preventDefault();
  const save = editor.querySelector("#save");
  const error = editor.querySelector("#edit-error");
  save.disabled = true;
  save.textContent = T.saving;
  try {
    const resp = await fetch(lastJob.links.konspekt, {
      method: "PUT", headers: {"Content-Type": "application/json", Accept: "application/json"},
      body: JSON.stringify(collect()),
    });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error ? body.error.message : String(resp.status));
    konspektData = body;
    showKonspekt(body);
    closeEditor();
    copyStatus.className = "small text-success";
    copyStatus.textContent = T.saved;
    prepareCopy(lastJob);  // the Markdown of the new version
  } catch (exc) {
    error.textContent = T.save_failed + ": " + (exc.message || T.network_error);
    save.disabled = false;
    save.textContent = T.save;
    save.focus();  // disabled while saving, it had lost the focus
  }
});
