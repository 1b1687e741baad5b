// taskwheel dashboard: login, actions through the API, live updates (EventSource).
// Our own plain JavaScript: no library, no build step.
"use strict";

const HEADERS = { "Content-Type": "application/json", "X-Taskwheel-Dashboard": "1" };

function notice(text, bad) {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = text;
  box.classList.toggle("bad", Boolean(bad));
  box.hidden = false;
}

async function call(url, body) {
  const answer = await fetch(url, {
    method: "POST", headers: HEADERS, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await answer.json(); } catch (_) { data = null; }
  if (!answer.ok) {
    throw new Error((data && (data.detail || data.title)) || `HTTP ${answer.status}`);
  }
  return data;
}

function summary(data) {
  if (!data) return "Done.";
  if (Array.isArray(data.replayed)) return `Replayed ${data.replayed.length} job(s).`;
  if (typeof data.purged === "number") return `Purged ${data.purged} job(s).`;
  if (Array.isArray(data.done)) {
    const failed = data.failed || [];
    return `Done for ${data.done.length} job(s)` +
      (failed.length ? `; ${failed.length} refused (${failed[0].detail})` : "") + ".";
  }
  if (data.result) return `Fired: ${data.result}.`;
  if (data.kind && data.name) {
    return typeof data.released === "number"
      ? `Resumed ${data.kind} ${data.name}: ${data.released} job(s) claimable again.`
      : `Paused ${data.kind} ${data.name}.`;
  }
  if (data.status) return `Now ${data.status}.`;
  return "Done.";
}

// Buttons: data-action (a URL), data-body (JSON), data-confirm (a question),
// data-step-from (the id of a select naming a workflow step).
function setUpActions() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action], button[data-bulk]");
    if (!button) return;
    let body;
    if (button.dataset.bulk) {
      const ids = [...document.querySelectorAll("input.pick:checked")].map((c) => Number(c.value));
      if (!ids.length) { notice("Select jobs first.", true); return; }
      body = { ids };
      const forGood = button.dataset.bulk === "delete" ? " with their history, for good" : "";
      if (!window.confirm(`${button.dataset.bulk} ${ids.length} job(s)${forGood}?`)) return;
    } else {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
      if (button.dataset.stepFrom) {
        body = { step: document.getElementById(button.dataset.stepFrom).value };
      }
    }
    button.disabled = true;
    try {
      const data = await call(button.dataset.action || button.dataset.url, body);
      sessionStorage.setItem("taskwheel-notice", summary(data));
      window.location.reload();
    } catch (error) {
      notice(error.message, true);
      button.disabled = false;
      button.focus();
    }
  });
  const all = document.getElementById("select-all");
  const count = document.getElementById("selected-count");
  const recount = () => {
    if (count) count.textContent = document.querySelectorAll("input.pick:checked").length;
  };
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll("input.pick").forEach((box) => { box.checked = all.checked; });
      recount();
    });
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("input.pick")) recount();
  });
  const kept = sessionStorage.getItem("taskwheel-notice");
  if (kept) { sessionStorage.removeItem("taskwheel-notice"); notice(kept); }
}

function setUpLogin() {
  const form = document.getElementById("login");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("login-error");
    error.hidden = true;
    const answer = await fetch("/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: form.key.value }),
    });
    const data = await answer.json();
    if (!answer.ok) {
      error.textContent = data.detail || "That key was refused.";
      error.hidden = false;
      form.key.focus();
      return;
    }
    const next = form.dataset.next;
    window.location.assign(next && next !== "/" ? next : data.next);
  });
}

function setUpNamespaceSwitch() {
  const select = document.getElementById("namespace-switch");
  if (!select) return;
  select.addEventListener("change", () => {
    window.location.assign(`/namespaces/${encodeURIComponent(select.value)}`);
  });
}

// Live: every element with data-topic is kept current by the server's feed.
function setUpLive() {
  const namespace = document.body.dataset.namespace;
  const regions = [...document.querySelectorAll("[data-topic]")];
  if (!namespace || !regions.length || !window.EventSource) return;
  const topics = regions.map((region) => region.dataset.topic);
  const url = `/api/v1/namespaces/${encodeURIComponent(namespace)}/stream?topics=` +
    encodeURIComponent(topics.join(","));
  const state = document.getElementById("live-state");
  const source = new EventSource(url);
  source.onopen = () => { state.dataset.state = "on"; state.textContent = "live"; };
  source.onerror = () => { state.dataset.state = "off"; state.textContent = "live updates: reconnecting"; };
  for (const region of regions) {
    source.addEventListener(region.dataset.topic, (event) => apply(region, JSON.parse(event.data)));
  }
}

function apply(region, data) {
  if (data.html !== undefined) {
    // Keep the focus where it was if the focused element is inside the region.
    const focused = region.contains(document.activeElement) && document.activeElement.id;
    region.innerHTML = data.html;
    if (focused) { const again = document.getElementById(focused); if (again) again.focus(); }
  }
  if (data.statuses) {
    for (const [id, status] of Object.entries(data.statuses)) {
      const cell = region.querySelector(`[data-job-status="${id}"]`);
      if (cell && cell.dataset.status !== status) {
        cell.dataset.status = status;
        cell.textContent = status;
      }
    }
  }
}

// The explanation of a job ("why isn't it running?"), where the server offers one.
async function setUpExplanation() {
  const panel = document.querySelector("[data-explain]");
  if (!panel) return;
  const body = panel.querySelector(".explain-body");
  try {
    const answer = await fetch(panel.dataset.explain, { credentials: "same-origin" });
    if (answer.status === 404) {
      const problem = await answer.json().catch(() => ({}));
      // A route this server lacks answers "no such resource"; a missing job names itself.
      const missingJob = problem.detail && problem.detail !== "no such resource";
      body.innerHTML = "";
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = missingJob ? `Not available: ${problem.detail}.` :
        "Not available: this server does not explain jobs.";
      body.appendChild(p);
      return;
    }
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    renderExplanation(body, await answer.json());
  } catch (error) {
    body.textContent = `Not available (${error.message}).`;
  }
}

// The answer of GET .../jobs/{id}/explanation: a summary, then each reason with its
// stable code and its sentence.
function renderExplanation(body, data) {
  body.innerHTML = "";
  const summary = document.createElement("p");
  summary.textContent = data.summary;
  body.appendChild(summary);
  if (!data.reasons || !data.reasons.length) return;
  const list = document.createElement("ul");
  for (const reason of data.reasons) {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = reason.code;
    item.appendChild(code);
    item.appendChild(document.createTextNode(` ${reason.message}`));
    list.appendChild(item);
  }
  body.appendChild(list);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpLogin();
  setUpActions();
  setUpNamespaceSwitch();
  setUpLive();
  setUpExplanation();
});
