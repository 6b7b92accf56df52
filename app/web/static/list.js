// /ui/: the applications and their five most recent deployments, each linking to its log.
import { Unauthorized, el, query, statusBadge, withKey } from "./common.js";

const APPS = `query ViewerApplications {
  applications(first: 100) {
    edges { node { id name appName status
      deployments(first: 5) { edges { node { id status title trigger createdAt } } } } }
  }
}`;

const body = document.querySelector("#apps tbody");
const message = document.getElementById("message");
let askKey = null;

function deploymentLink(d) {
  const a = el("a", { class: "dep", href: `/ui/deployments/${encodeURIComponent(d.id)}` });
  const when = new Date(d.createdAt).toLocaleString();
  a.append(statusBadge(d.status), el("span", { class: "title", text: d.title }), el("time", { text: when }));
  return el("li", {}, a);
}

async function load() {
  message.textContent = "Loading…";
  try {
    const data = await query(APPS);
    const apps = data.applications.edges.map((e) => e.node);
    body.replaceChildren(
      ...apps.map((app) => {
        const deps = app.deployments.edges.map((e) => e.node);
        const list = deps.length ? el("ul", { class: "deps" }, ...deps.map(deploymentLink)) : el("span", { class: "muted", text: "none yet" });
        return el(
          "tr",
          { "data-app": app.id },
          el("td", {}, el("strong", { text: app.name }), el("div", { class: "muted", text: app.appName })),
          el("td", {}, statusBadge(app.status)),
          el("td", {}, list),
        );
      }),
    );
    message.textContent = apps.length ? "" : "No applications yet.";
  } catch (err) {
    if (err instanceof Unauthorized) askKey(err.message);
    else message.textContent = `Could not load the applications: ${err.message}`;
  }
}

document.getElementById("refresh").onclick = load;
askKey = withKey(load);
