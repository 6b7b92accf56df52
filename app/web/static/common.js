// What both pages share: the API key (sessionStorage, entered by the user), GraphQL over HTTP
// with the key as a header, and the key form.

const KEY = "slipway.apiKey";

export const endpoint = "/graphql";
export const wsEndpoint = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

export class Unauthorized extends Error {}

// Runs a query over HTTP POST; the key goes in x-api-key, never in the URL.
export async function query(document, variables = {}) {
  const key = apiKey();
  if (!key) throw new Unauthorized("an API key is required");
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key },
    body: JSON.stringify({ query: document, variables }),
    credentials: "omit",
    cache: "no-store",
  });
  if (res.status === 401) throw new Unauthorized("the API key is not valid");
  const body = await res.json();
  if (body.errors && body.errors.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

// Shows the key form when there is no key (or it was refused) and calls start() once one is
// given; "Forget key" clears it. start() is called at once when a key is kept.
export function withKey(start, message = "") {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  const note = document.getElementById("key-note");
  const forget = document.getElementById("key-forget");
  forget.onclick = () => {
    forgetKey();
    location.reload();
  };
  const ask = (why) => {
    note.textContent = why;
    form.hidden = false;
    forget.hidden = true;
    input.focus();
  };
  form.onsubmit = (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    input.value = "";
    form.hidden = true;
    forget.hidden = false;
    start();
  };
  if (apiKey() && !message) {
    form.hidden = true;
    forget.hidden = false;
    start();
  } else {
    ask(message || "Enter an API key (READ is enough). It is kept in this tab's session storage only.");
  }
  return (why) => {
    forgetKey();
    ask(why);
  };
}

export function statusBadge(status) {
  return el("span", { class: `badge st-${String(status).toLowerCase()}`, text: status });
}
