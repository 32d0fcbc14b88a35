// The operator console page: shows the cell's view and the policy's proposal, sends the operator's choices.
// Nothing here moves the arm by itself: every execution is one click on an Execute button.
"use strict";

const SCALE = 2; // screen pixels per view pixel
const $ = (id) => document.getElementById(id);
let state = null;
let images = {}; // layer name -> HTMLImageElement of the shown observation
let shownId = null;
let clicks = { pick: null, place: null };

async function post(path, body) {
  const reply = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await reply.json();
  if (!reply.ok) throw new Error(data.error || reply.statusText);
  return data;
}

function say(text, error) {
  const box = $("message");
  box.textContent = text;
  box.className = "box" + (error ? " error" : "");
}

function loadLayers(id) {
  const names = ["color", "height"];
  if (state.proposal) names.push("pick", "place");
  images = {};
  let pending = names.length;
  for (const name of names) {
    const img = new Image();
    img.onload = img.onerror = () => { if (--pending === 0) draw(); };
    img.src = `/api/observation/${id}/${name}.png`;
    images[name] = img;
  }
}

function point(pixel) {
  return [pixel[1] * SCALE + SCALE / 2, pixel[0] * SCALE + SCALE / 2];
}

function marker(ctx, pixel, color, dashed, rotationDeg) {
  const [x, y] = point(pixel);
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  if (dashed) ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.arc(x, y, 12, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x - 6, y); ctx.lineTo(x + 6, y); ctx.moveTo(x, y - 6); ctx.lineTo(x, y + 6);
  ctx.stroke();
  if (rotationDeg !== undefined) {
    const a = (rotationDeg * Math.PI) / 180;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 26 * Math.cos(a), y - 26 * Math.sin(a));
    ctx.stroke();
  }
  ctx.restore();
}

function draw() {
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const base = $("show-height").checked ? images.height : images.color;
  if (base && base.complete) ctx.drawImage(base, 0, 0, canvas.width, canvas.height);
  if (state && state.proposal) {
    for (const name of ["pick", "place"]) {
      if ($("show-" + name).checked && images[name] && images[name].complete) {
        ctx.drawImage(images[name], 0, 0, canvas.width, canvas.height);
      }
    }
    marker(ctx, state.proposal.pick_pixel, "#40ff40", true);
    marker(ctx, state.proposal.place_pixel, "#28c8ff", true, state.proposal.rotation_deg);
  }
  if (clicks.pick) marker(ctx, clicks.pick, "#ffffff", false);
  if (clicks.place) marker(ctx, clicks.place, "#ffd23c", false, Number($("rotation").value));
}

function render(next) {
  state = next;
  if (state.view) {
    const canvas = $("view");
    canvas.width = state.view.cols * SCALE;
    canvas.height = state.view.rows * SCALE;
  }
  if (state.observation_id !== shownId) {
    shownId = state.observation_id;
    clicks = { pick: null, place: null };
    if (shownId !== null) loadLayers(shownId); else { images = {}; draw(); }
  } else {
    draw();
  }
  const p = state.proposal;
  $("proposal").textContent = p
    ? `Proposal ${state.observation_id}: pick (${p.pick_pixel}) ${(100 * p.pick_confidence).toFixed(1)} %, ` +
      `place (${p.place_pixel}) ${(100 * p.place_confidence).toFixed(1)} %, rotation ${p.rotation_deg.toFixed(0)} deg`
    : state.view ? `Observation ${state.observation_id} (no policy): click a pick and a place.` : "No proposal yet.";
  $("execute-proposal").disabled = !(state.can_execute && p);
  $("execute-correction").disabled = !(state.can_execute && clicks.pick && clicks.place);
  $("correction").textContent =
    `Pick: ${clicks.pick ? clicks.pick.join(", ") : "none"}, place: ${clicks.place ? clicks.place.join(", ") : "none"}`;
  const ep = state.episode;
  $("episode").textContent =
    `Episode: ${ep.steps} step(s) recorded (${ep.sources.join(", ") || "none"})` +
    (ep.saved.length ? `; last saved ${ep.saved[ep.saved.length - 1].split("/").pop()}` : "");
  const cell = state.cell;
  $("cell").textContent = cell
    ? `${cell.task} ${cell.split} seed ${cell.seed}: step ${cell.step}, score ${cell.score.toFixed(1)}` +
      (cell.done ? " (done)" : "")
    : "real cell";
  $("cell").dataset.score = cell ? String(cell.score) : "";
  $("reset").disabled = !state.can_reset;
  if (state.executing) say(`executing (${state.executing.source})...`, false);
  else say(state.message, state.error);
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/api/events`);
  socket.onopen = () => { $("connection").textContent = "connected"; $("connection").className = "good"; };
  socket.onmessage = (event) => render(JSON.parse(event.data));
  socket.onclose = () => {
    $("connection").textContent = "disconnected: retrying";
    $("connection").className = "bad";
    setTimeout(connect, 1000);
  };
}

async function act(what, call) {
  try {
    const out = await call();
    if (out && out.observation_id !== undefined) render(out);
    else if (out && out.state) render(out.state);
    return out;
  } catch (err) {
    say(`${what}: ${err.message}`, true);
  }
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  act("propose", () => post("/api/propose", { instruction: $("instruction").value }));
});
$("observe").addEventListener("click", () =>
  act("observe", () => post("/api/observe", { instruction: $("instruction").value })));
$("execute-proposal").addEventListener("click", () =>
  act("execute", () => post("/api/execute", { observation_id: state.observation_id })));
$("execute-correction").addEventListener("click", () =>
  act("execute", () => post("/api/execute", {
    observation_id: state.observation_id,
    correction: { pick: clicks.pick, place: clicks.place, rotation: Number($("rotation").value) },
  })));
$("clear-correction").addEventListener("click", () => { clicks = { pick: null, place: null }; render(state); });
$("stop").addEventListener("click", () => act("stop", () => post("/api/stop", {})));
$("done").addEventListener("click", () =>
  act("episode", () => post("/api/episode", { outcome: "done", score: Number($("score").value) })));
$("failed").addEventListener("click", () =>
  act("episode", () => post("/api/episode", { outcome: "failed", score: Number($("score").value) })));
$("reset").addEventListener("click", () => act("new episode", () => post("/api/reset", {})));
for (const id of ["show-pick", "show-place", "show-height", "rotation"]) $(id).addEventListener("input", draw);
$("view").addEventListener("click", (event) => {
  if (!state || !state.view) return;
  const box = event.target.getBoundingClientRect();
  const col = Math.floor(((event.clientX - box.left) / box.width) * state.view.cols);
  const row = Math.floor(((event.clientY - box.top) / box.height) * state.view.rows);
  if (!clicks.pick || clicks.place) clicks = { pick: [row, col], place: null };
  else clicks.place = [row, col];
  render(state);
});

fetch("/api/state").then((r) => r.json()).then(render);
connect();
