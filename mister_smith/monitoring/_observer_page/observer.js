// The mister_smith observer page: polls observer.json and renders it.
// Read-only; text is always inserted with textContent (names come from the system).
"use strict";

const POLL_MS = 1000;
let lastOk = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(state) {
  return el("span", { class: "badge s-" + String(state).replace(/[^a-z_]/g, "") }, state);
}

function num(value) {
  return el("td", { class: "num" }, value === null || value === undefined ? "–" : value);
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  if (value < 1e-3) return (value * 1e6).toFixed(0) + " µs";
  if (value < 1) return (value * 1e3).toFixed(1) + " ms";
  return value.toFixed(2) + " s";
}

function ago(now, time) {
  if (now === null || time === null || time === undefined) return "";
  return "-" + Math.max(0, now - time).toFixed(1) + " s";
}

function fill(tbody, rows, columns) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    tbody.append(el("tr", {}, el("td", { class: "empty", colspan: String(columns) }, "none")));
    return;
  }
  for (const row of rows) tbody.append(row);
}

function renderNode(node) {
  const label = el("span", { class: node.kind === "supervisor" ? "sup" : "child" }, node.name);
  const item = el("li", { "data-name": node.name }, label, badge(node.state));
  if (node.restarts) item.append(el("span", { class: "restarts" }, "restarts=" + node.restarts));
  if (node.children.length) {
    const list = el("ul");
    for (const child of node.children) list.append(renderNode(child));
    item.append(list);
  }
  return item;
}

function render(view) {
  const now = view.now;
  const tree = document.getElementById("tree");
  tree.replaceChildren();
  if (view.tree) {
    tree.append(renderNode(view.tree.root));
    document.getElementById("tree-count").textContent = view.tree.nodes + " nodes";
    document.getElementById("tree-omitted").textContent =
      view.tree.omitted ? view.tree.omitted + " nodes not shown" : "";
  }

  const actors = view.actors;
  document.getElementById("actor-count").textContent = actors.total + " live";
  document.getElementById("actors-omitted").textContent =
    actors.omitted ? actors.omitted + " less loaded actors not shown" : "";
  fill(document.querySelector("#actors tbody"), actors.items.map((a) => {
    const share = a.capacity ? a.queued / a.capacity : 0;
    const bar = el("span", { class: share > 0.8 ? "bar hot" : "bar", title: a.queued + " / " + a.capacity },
      el("span", { style: "width:" + Math.min(100, share * 100).toFixed(0) + "%" }));
    return el("tr", { "data-actor": a.name }, el("td", {}, a.name), el("td", {}, badge(a.status)),
      el("td", {}, bar, " " + a.queued + "/" + a.capacity), num(a.in_flight), num(a.handled),
      num(a.failed), num(a.dead_lettered), num(a.restarts));
  }), 8);

  const tools = view.tools;
  document.getElementById("tool-count").textContent = tools.total + " registered";
  fill(document.querySelector("#tools tbody"), tools.items.map((t) =>
    el("tr", {}, el("td", {}, t.name), num(t.calls), num(t.succeeded), num(t.failures),
      num(t.timeouts), num(t.denied), num(t.invalid), num(t.in_flight),
      num(seconds(t.p50)), num(seconds(t.p99)))), 10);

  fill(document.querySelector("#breakers tbody"), view.breakers.map((b) =>
    el("tr", {}, el("td", {}, b.breaker), el("td", {}, badge(b.state)), num(ago(now, b.since)))), 3);

  fill(document.querySelector("#decisions tbody"), view.decisions.slice().reverse().map((d) =>
    el("tr", {}, num(ago(now, d.time)), el("td", {}, d.supervisor), el("td", {}, d.child),
      el("td", {}, el("code", {}, d.error_type || "(returned)")), el("td", {}, d.severity),
      el("td", {}, badge(d.action)), num(d.attempt || ""))), 7);

  fill(document.querySelector("#events tbody"), view.events.slice().reverse().map((e) => {
    const details = Object.entries(e.fields).filter(([, v]) => v !== null).map(([k, v]) => k + "=" + JSON.stringify(v)).join(" ");
    return el("tr", {}, num(ago(now, e.time)), el("td", {}, el("code", {}, e.type)),
      el("td", {}, e.source), el("td", {}, details));
  }), 4);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const response = await fetch("observer.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    lastOk = Date.now();
    status.textContent = "live · updated " + new Date(lastOk).toLocaleTimeString();
    status.className = "";
  } catch (error) {
    status.textContent = "disconnected (" + error.message + "), retrying…";
    status.className = "stale";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.addEventListener("DOMContentLoaded", poll);
