// /ui/deployments/<id>: status and steps live (deploymentStatus), the log live (deploymentLogs)
// in a virtualised list (only the rows on screen, plus a margin, are in the DOM), following the
// tail unless the user scrolled up, resuming after a dropped connection from the last seq it
// has, with search and a download of the lines it holds.
import { renderAnsi, stripAnsi } from "./ansi.js";
import { LiveClient } from "./gqlws.js";
import { apiKey, el, withKey, wsEndpoint } from "./common.js";

const ROW = 18; // px; every row is one line high (long lines scroll sideways)
const MARGIN = 40; // rows kept above and below the visible ones

const STATUS = `subscription ViewerStatus($id: ID!) {
  deploymentStatus(deploymentId: $id) {
    id status title errorMessage cancelRequested queuePosition
    application { id name appName }
    steps { step outcome durationMs message }
  }
}`;
const LOGS = `subscription ViewerLogs($id: ID!, $after: Int!) {
  deploymentLogs(deploymentId: $id, afterSeq: $after) { seq step stream message }
}`;

const deploymentId = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
const $ = (id) => document.getElementById(id);
const box = $("log");
const spacer = $("spacer");
const rows = $("rows");
const search = $("search");

// The lines held, column by column (100,000 lines are four arrays, not 100,000 objects).
const log = { seq: [], step: [], stream: [], msg: [], low: [] };
const state = {
  lastSeq: 0,
  duplicates: 0, // lines received again (seq <= lastSeq) and dropped
  gaps: 0, // times a line came with a seq beyond lastSeq + 1
  logComplete: false,
  status: null,
  follow: true,
  matches: [],
  matchSet: new Set(),
  current: -1,
  client: null,
};
let scheduled = false;
let shown = { first: -1, last: -1, version: -1 };
let version = 0; // bumped when what the rows show changes (matches, current match)

function count() {
  return log.seq.length;
}

function schedule() {
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(render);
  }
}

function makeRow(i) {
  const classes = ["row", `s-${log.stream[i]}`];
  if (state.matchSet.has(i)) classes.push("match");
  if (state.current >= 0 && state.matches[state.current] === i) classes.push("current");
  const msg = el("span", { class: "msg" });
  renderAnsi(log.msg[i], msg);
  return el(
    "div",
    { class: classes.join(" "), "data-seq": String(log.seq[i]) },
    el("span", { class: "seq", text: String(log.seq[i]) }),
    el("span", { class: "step", text: log.step[i] || "" }),
    msg,
  );
}

function render() {
  scheduled = false;
  const n = count();
  spacer.style.height = `${n * ROW}px`;
  if (state.follow) box.scrollTop = box.scrollHeight;
  const top = (lastTop = box.scrollTop);
  const first = Math.max(0, Math.floor(top / ROW) - MARGIN);
  const last = Math.min(n, Math.ceil((top + box.clientHeight) / ROW) + MARGIN);
  $("count").textContent = `${n.toLocaleString("en")} line${n === 1 ? "" : "s"}`;
  if (first === shown.first && last === shown.last && version === shown.version) return;
  shown = { first, last, version };
  rows.style.transform = `translateY(${first * ROW}px)`;
  const fragment = document.createDocumentFragment();
  for (let i = first; i < last; i++) fragment.append(makeRow(i));
  rows.replaceChildren(fragment);
}

function setFollow(on) {
  if (state.follow === on) return;
  state.follow = on;
  $("follow").classList.toggle("on", on);
  $("follow").textContent = on ? "Following" : "Follow tail";
}

// Following stops when the user scrolls up, and starts again at the bottom. Only a move up
// counts: a render growing the list under a following view must never stop it.
let lastTop = 0;
box.addEventListener("scroll", () => {
  const top = box.scrollTop;
  if (top + box.clientHeight >= box.scrollHeight - ROW) setFollow(true);
  else if (top < lastTop) setFollow(false);
  lastTop = top;
  schedule();
});
$("follow").onclick = () => {
  setFollow(!state.follow);
  schedule();
};

// --- lines ---------------------------------------------------------------------------------

function lowered(i) {
  let text = log.low[i];
  if (text === undefined) text = log.low[i] = stripAnsi(log.msg[i]).toLowerCase();
  return text;
}

function addLines(lines) {
  const start = count();
  for (const line of lines) {
    if (line.seq <= state.lastSeq) {
      state.duplicates += 1;
      continue;
    }
    if (line.seq !== state.lastSeq + 1) state.gaps += 1;
    state.lastSeq = line.seq;
    log.seq.push(line.seq);
    log.step.push(line.step);
    log.stream.push(line.stream);
    log.msg.push(line.message);
  }
  const needle = search.value.toLowerCase();
  if (needle) {
    for (let i = start; i < count(); i++) {
      if (lowered(i).includes(needle)) {
        state.matches.push(i);
        state.matchSet.add(i);
      }
    }
    showMatchCount();
  }
  schedule();
}

// --- search --------------------------------------------------------------------------------

function showMatchCount() {
  const n = state.matches.length;
  const needle = search.value;
  $("matches").textContent = !needle ? "" : n === 0 ? "no match" : `${state.current + 1} / ${n}`;
}

function findAll() {
  const needle = search.value.toLowerCase();
  state.matches = [];
  state.matchSet = new Set();
  state.current = -1;
  if (needle) {
    for (let i = 0; i < count(); i++) {
      if (lowered(i).includes(needle)) state.matches.push(i);
    }
    state.matchSet = new Set(state.matches);
  }
  version += 1;
  if (state.matches.length) jump(0);
  else {
    showMatchCount();
    schedule();
  }
}

function jump(k) {
  const n = state.matches.length;
  if (!n) return;
  state.current = ((k % n) + n) % n;
  const i = state.matches[state.current];
  setFollow(false);
  box.scrollTop = Math.max(0, i * ROW - box.clientHeight / 2 + ROW / 2);
  version += 1;
  showMatchCount();
  schedule();
}

let searchTimer = null;
search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    searchTimer = null;
    findAll();
  }, 150);
});
search.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    if (searchTimer !== null) {
      clearTimeout(searchTimer);
      searchTimer = null;
      findAll(); // Enter right after typing: search first, then step from the first match
      if (!event.shiftKey) return;
    }
    jump(state.current + (event.shiftKey ? -1 : 1));
  } else if (event.key === "Escape") {
    search.value = "";
    findAll();
  }
});
$("next").onclick = () => jump(state.current + 1);
$("prev").onclick = () => jump(state.current - 1);

// --- download ------------------------------------------------------------------------------

$("download").onclick = () => {
  const text = log.msg.length ? log.msg.join("\n") + "\n" : "";
  const blob = new Blob([text], { type: "text/plain;charset=utf-8" });
  const link = el("a", { href: URL.createObjectURL(blob), download: `deployment-${deploymentId}.log` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
};

// --- status --------------------------------------------------------------------------------

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function showStatus(d) {
  state.status = d.status;
  const badge = $("status");
  badge.textContent = d.queuePosition ? `${d.status} (#${d.queuePosition})` : d.status;
  badge.className = `badge st-${d.status.toLowerCase()}`;
  $("title").textContent = `${d.application.name} · ${d.title}`;
  document.title = `${d.status} · ${d.application.name} — Slipway`;
  const error = $("error");
  error.hidden = !d.errorMessage;
  error.textContent = d.errorMessage || "";
  $("steps").replaceChildren(
    ...d.steps.map((s) =>
      el(
        "li",
        { class: `step o-${String(s.outcome).toLowerCase()}`, title: s.message || "" },
        el("span", { class: "name", text: s.step }),
        el("span", { class: "outcome", text: s.outcome }),
        el("span", { class: "muted", text: duration(s.durationMs) }),
      ),
    ),
  );
}

function showError(payload) {
  const errors = Array.isArray(payload) ? payload : [payload];
  const error = $("error");
  error.hidden = false;
  error.textContent = errors.map((e) => e.message).join("; ");
}

function showConnection(what) {
  const text = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "connection lost: reconnecting…",
    closed: state.logComplete ? "end of log" : "not connected",
  }[what];
  const node = $("connection");
  node.textContent = text;
  node.className = `connection c-${what}`;
}

// --- connection ----------------------------------------------------------------------------

let askKey = null;

function start() {
  if (state.client) state.client.close();
  const client = (state.client = new LiveClient(wsEndpoint, apiKey(), {
    onState: showConnection,
    onFatal: (code, reason) => askKey(code === 4401 ? "The API key was refused." : reason || `closed (${code})`),
  }));
  client.subscribe({
    query: STATUS,
    variables: () => ({ id: deploymentId }),
    next: (payload) => (payload.errors ? showError(payload.errors) : showStatus(payload.data.deploymentStatus)),
    error: showError,
    complete: () => {},
  });
  if (!state.logComplete) {
    client.subscribe({
      query: LOGS,
      variables: () => ({ id: deploymentId, after: state.lastSeq }), // resume after what we have
      next: (payload) => (payload.errors ? showError(payload.errors) : addLines(payload.data.deploymentLogs)),
      error: showError,
      complete: () => {
        state.logComplete = true;
      },
    });
  }
}

window.slipwayViewer = { state, log }; // read by the browser tests
askKey = withKey(start);
