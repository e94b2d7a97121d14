// The operations page (/ops/, staff only): asks /ops/data/ every 1.5 s and redraws itself.
// Messages per second come from the frame counters of the live connections: for each
// connection seen in the previous answer, the frames it gained since; for one opened since,
// all of its frames. A connection that closed between two answers takes its last frames with
// it (the rate is of the connections alive now). The chart is one SVG polyline per direction.

import { localTime } from "./time.js";

const root = document.getElementById("ops");
const url = root.dataset.url;
const interval = Number(root.dataset.interval) || 1500;
const WINDOW = 60; // seconds of the chart
const state = document.getElementById("ops-state");

let previous = null; // { now, frames: Map(id -> [in, out]) }
const series = []; // { t, in, out }, the last WINDOW seconds

function rates(data) {
  const frames = new Map(data.connections.map((c) => [c.id, [c.frames_in, c.frames_out]]));
  let rate = null;
  if (previous && data.now > previous.now) {
    let gained = [0, 0];
    for (const c of data.connections) {
      const before = previous.frames.get(c.id) ?? (c.since >= previous.now ? [0, 0] : null);
      if (!before) continue; // listed for the first time but older: no base to count from
      gained = [gained[0] + Math.max(0, c.frames_in - before[0]), gained[1] + Math.max(0, c.frames_out - before[1])];
    }
    const seconds = data.now - previous.now;
    rate = { in: gained[0] / seconds, out: gained[1] / seconds };
  }
  previous = { now: data.now, frames };
  return rate;
}

const format = (value) => (value >= 10 ? value.toFixed(0) : value.toFixed(1));

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function cell(row, value, className) {
  const td = row.insertCell();
  if (value instanceof Node) td.append(value);
  else td.textContent = value;
  if (className) td.className = className;
}

function drawConnections(connections) {
  const body = document.querySelector("#connections tbody");
  const rows = [...connections].sort((a, b) => a.since - b.since);
  body.replaceChildren();
  for (const c of rows) {
    const row = body.insertRow();
    row.dataset.id = c.id;
    cell(row, c.user || "anonymous", c.user ? "user" : "user muted");
    cell(row, c.route, "route");
    cell(row, c.path, "path");
    cell(row, localTime(document.createElement("time"), new Date(c.since * 1000).toISOString()));
    cell(row, String(c.frames_in), "num frames-in");
    cell(row, String(c.frames_out), "num frames-out");
  }
}

function drawRooms(rooms) {
  const list = document.getElementById("rooms-present");
  list.replaceChildren(
    ...rooms.map((room) => {
      const item = document.createElement("li");
      item.dataset.slug = room.slug;
      const name = document.createElement("strong");
      name.textContent = room.name;
      const who = document.createElement("span");
      who.className = "present";
      who.textContent = room.present.length
        ? room.present.map((p) => (p.tabs > 1 ? `${p.user} (${p.tabs} tabs)` : p.user)).join(", ")
        : "nobody";
      if (!room.present.length) who.classList.add("muted");
      item.append(name, " ");
      if (room.private) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "private";
        item.append(tag, " ");
      }
      item.append(who);
      return item;
    }),
  );
}

function drawCounters(counters) {
  const list = document.getElementById("counters");
  list.replaceChildren(
    ...Object.entries(counters).flatMap(([name, value]) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const detail = document.createElement("dd");
      detail.textContent = String(value);
      if (value > 0) detail.className = "nonzero";
      return [term, detail];
    }),
  );
}

function drawChart(now) {
  while (series.length && series[0].t < now - WINDOW) series.shift();
  const peak = Math.max(0, ...series.map((p) => Math.max(p.in, p.out)));
  const top = Math.max(1, peak);
  const chart = document.getElementById("rate-chart");
  for (const direction of ["in", "out"]) {
    const points = series.map((p) => {
      const x = ((p.t - (now - WINDOW)) / WINDOW) * 600;
      const y = 116 - (p[direction] / top) * 110;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    chart.querySelector(`polyline.${direction}`).setAttribute("points", points.join(" "));
  }
  text("rate-peak", format(peak));
}

function draw(data) {
  text("connection-count", String(data.connections_total));
  text("process-count", String(data.processes));
  text("layer-name", data.layer || "no channel layer");
  drawConnections(data.connections);
  drawRooms(data.rooms);
  drawCounters(data.counters);
  const rate = rates(data);
  if (rate) {
    text("rate-in", format(rate.in));
    text("rate-out", format(rate.out));
    series.push({ t: data.now, ...rate });
  }
  drawChart(data.now);
}

async function poll() {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (response.status === 403) {
      state.dataset.state = "refused";
      state.textContent = "Staff only: log in again as a staff user.";
      return; // the answer would be the same
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    draw(await response.json());
    root.dataset.polls = String(Number(root.dataset.polls) + 1);
    state.dataset.state = "live";
    state.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (error) {
    state.dataset.state = "error";
    state.textContent = `Could not update (${error.message}); trying again.`;
  }
  setTimeout(poll, interval);
}

poll();
