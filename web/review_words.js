// GlyphSR Review Words: the dialog a running "GlyphSR Review Words" node opens in the browser that queued the run.
// The server sends "glyphsr.review" with the image(s) and the words; this file says the dialog is open
// (POST .../open), lets the person retype, delete or draw words, and POSTs the reviewed list on Continue.
// The answer holds the corrections, stored in the node's "corrections" widget (saved with the workflow).
// Every word is shown through input.value / textContent / canvas text: never parsed as HTML.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const OPEN_EVENT = "glyphsr.review";
const CLOSED_EVENT = "glyphsr.review.closed";
const MIN_BOX_PX = 4;
let current = null; // the dialog on screen: {detail, overlay, timer}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  const { style, ...rest } = props;
  Object.assign(node, rest);
  if (style) Object.assign(node.style, style);
  for (const child of children) node.append(child);
  return node;
}

async function post(route, payload) {
  const response = await api.fetchApi(route, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  let body = {};
  try { body = await response.json(); } catch (e) { body = { error: `HTTP ${response.status}` }; }
  return { ok: response.ok, body };
}

function routeOf(detail) {
  return `/glyphsr/review/${encodeURIComponent(detail.node)}`;
}

// ---------------------------------------------------------------- state

function initialState(detail) {
  return detail.words.map((words, i) => {
    const [w, h] = detail.sizes[i];
    return words.map((word, id) => ({
      id, text: word.text, deleted: false,
      box: word.box ? [word.box[0] * w, word.box[1] * h, word.box[2] * w, word.box[3] * h] : null,
    }));
  });
}

function reviewDocument(detail, state) {
  const images = state.map((words, i) => {
    const [w, h] = detail.sizes[i];
    const kept = words.filter((word) => !word.deleted && word.text.trim());
    return {
      words: kept.map((word) => {
        if (word.id !== null) return { id: word.id, text: word.text.trim() };
        const [x0, y0, x1, y1] = word.box;
        const clamp = (v, max) => Math.min(max, Math.max(0, Math.round(v * 100) / 100));
        return { text: word.text.trim(), box: [clamp(x0, w), clamp(y0, h), clamp(x1, w), clamp(y1, h)] };
      }),
    };
  });
  return { prompt_id: detail.prompt_id, images };
}

// ---------------------------------------------------------------- drawing

function drawPage(view) {
  const { canvas, image, words, scale, selected, drag } = view;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  ctx.font = "bold 13px sans-serif";
  words.forEach((word, n) => {
    if (word.deleted || !word.box) return;
    const [x0, y0, x1, y1] = word.box.map((v) => v * scale);
    ctx.lineWidth = n === selected ? 3 : 2;
    ctx.strokeStyle = n === selected ? "#ffd400" : word.id === null ? "#38a0ff" : "#2ecc40";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const typed = word.text.trim();
    const label = typed ? `${n + 1} ${typed.length > 24 ? typed.slice(0, 23) + "\u2026" : typed}` : String(n + 1);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillRect(x0, Math.max(0, y0 - 16), ctx.measureText(label).width + 6, 16);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x0 + 3, Math.max(12, y0 - 4));
  });
  if (drag) {
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = "#38a0ff";
    ctx.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0);
    ctx.setLineDash([]);
  }
}

function wordRow(view, word, n) {
  const input = el("input", {
    type: "text", value: word.text, className: "glyphsr-review-word", maxLength: 120,
    placeholder: word.id === null ? "type the drawn word" : "(empty: deleted)",
    style: { flex: "1", minWidth: "0", padding: "3px 6px", background: "#222", color: "#eee", border: "1px solid #555" },
  });
  input.addEventListener("input", () => { word.text = input.value; drawPage(view); });
  input.addEventListener("focus", () => { view.selected = n; drawPage(view); });
  const remove = el("button", { textContent: "\u2715", title: "Delete this word", className: "glyphsr-review-delete" });
  remove.addEventListener("click", () => { word.deleted = true; view.selected = -1; renderList(view); drawPage(view); });
  const number = el("span", { textContent: String(n + 1), style: { width: "2.2em", color: "#aaa" } });
  return el("div", { style: { display: "flex", gap: "4px", alignItems: "center", margin: "2px 0" } },
    [number, input, remove]);
}

function renderList(view) {
  view.list.replaceChildren();
  view.inputs = [];
  view.words.forEach((word, n) => {
    if (word.deleted) return;
    const row = wordRow(view, word, n);
    view.inputs[n] = row.querySelector("input");
    view.list.append(row);
  });
  if (!view.list.children.length) view.list.append(el("div", { textContent: "No words.", style: { color: "#aaa" } }));
}

// the pointer in canvas pixels, kept on the canvas (a drag may leave it)
function canvasPoint(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * canvas.width) / Math.max(1, rect.width);
  const y = ((event.clientY - rect.top) * canvas.height) / Math.max(1, rect.height);
  return [Math.min(canvas.width, Math.max(0, x)), Math.min(canvas.height, Math.max(0, y))];
}

function wireDrawing(view) {
  const { canvas } = view;
  canvas.addEventListener("mousedown", (event) => {
    const [x, y] = canvasPoint(canvas, event);
    view.drag = { x0: x, y0: y, x1: x, y1: y };
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!view.drag) return;
    [view.drag.x1, view.drag.y1] = canvasPoint(canvas, event);
    drawPage(view);
  });
  canvas.addEventListener("mouseup", () => {
    const drag = view.drag;
    view.drag = null;
    if (!drag) return;
    const [x0, x1] = [Math.min(drag.x0, drag.x1), Math.max(drag.x0, drag.x1)].map((v) => v / view.scale);
    const [y0, y1] = [Math.min(drag.y0, drag.y1), Math.max(drag.y0, drag.y1)].map((v) => v / view.scale);
    if (x1 - x0 < MIN_BOX_PX || y1 - y0 < MIN_BOX_PX) return selectAt(view, x0, y0);
    view.words.push({ id: null, text: "", deleted: false, box: [x0, y0, x1, y1] });
    view.selected = view.words.length - 1;
    renderList(view);
    drawPage(view);
    view.inputs[view.selected]?.focus();
  });
}

function selectAt(view, x, y) {
  const hit = view.words.findIndex((w) => !w.deleted && w.box && w.box[0] <= x && x <= w.box[2] && w.box[1] <= y && y <= w.box[3]);
  view.selected = hit;
  drawPage(view);
  if (hit >= 0) view.inputs[hit]?.focus();
}

// ---------------------------------------------------------------- the dialog

function showPage(dialog, index) {
  const { detail, state, view } = dialog;
  const [w, h] = detail.sizes[index];
  const picture = detail.images[Math.min(index, detail.images.length - 1)];
  view.scale = Math.min(4, (window.innerWidth * 0.62) / w, (window.innerHeight * 0.78) / h);
  view.canvas.width = Math.max(1, Math.round(w * view.scale));
  view.canvas.height = Math.max(1, Math.round(h * view.scale));
  view.words = state[index];
  view.selected = -1;
  view.image = new Image();
  view.image.onload = () => drawPage(view);
  view.image.src = api.apiURL(`/view?filename=${encodeURIComponent(picture.filename)}&type=${encodeURIComponent(picture.type)}` +
    `&subfolder=${encodeURIComponent(picture.subfolder)}`);
  dialog.pageLabel.textContent = detail.sizes.length > 1 ? `Image ${index + 1} of ${detail.sizes.length}` : "";
  dialog.page = index;
  renderList(view);
  drawPage(view);
}

function storeCorrections(nodeId, corrections) {
  const node = app.graph?.getNodeById?.(Number(nodeId)) ?? app.graph?.getNodeById?.(nodeId);
  const widget = node?.widgets?.find((w) => w.name === "corrections");
  if (!widget) return false;
  widget.value = corrections;
  widget.callback?.(corrections);
  app.graph.setDirtyCanvas(true, true);
  return true;
}

async function submit(dialog) {
  dialog.status.textContent = "Sending\u2026";
  const { ok, body } = await post(routeOf(dialog.detail), reviewDocument(dialog.detail, dialog.state));
  if (!ok) {
    dialog.status.textContent = `Not accepted: ${body.error ?? "unknown error"}`;
    return;
  }
  storeCorrections(dialog.detail.node, body.corrections ?? "");
  closeDialog();
}

function buildDialog(detail) {
  const view = { canvas: el("canvas", { className: "glyphsr-review-canvas",
    style: { cursor: "crosshair", alignSelf: "flex-start", flexShrink: "0" } }),
    list: el("div", { className: "glyphsr-review-list", style: { overflowY: "auto", flex: "1" } }) };
  wireDrawing(view);
  const dialog = { detail, state: initialState(detail), view, page: 0 };
  dialog.pageLabel = el("span");
  dialog.status = el("div", { className: "glyphsr-review-status", style: { color: "#f88", minHeight: "1.2em" } });
  dialog.countdown = el("div", { style: { color: "#aaa" } });
  const button = (label, cls, onClick) => {
    const b = el("button", { textContent: label, className: cls, style: { padding: "6px 14px" } });
    b.addEventListener("click", onClick);
    return b;
  };
  const pager = el("div", { style: { display: "flex", gap: "6px", alignItems: "center" } }, [
    button("\u25C0", "glyphsr-review-prev", () => showPage(dialog, Math.max(0, dialog.page - 1))),
    dialog.pageLabel,
    button("\u25B6", "glyphsr-review-next", () => showPage(dialog, Math.min(detail.sizes.length - 1, dialog.page + 1))),
  ]);
  if (detail.sizes.length < 2) pager.style.display = "none";
  const side = el("div", { style: { width: "340px", display: "flex", flexDirection: "column", gap: "6px", maxHeight: "80vh" } }, [
    el("h3", { textContent: "Review words", style: { margin: "0" } }),
    el("div", { textContent: "Retype a word, \u2715 deletes it, drag on the image to draw a box for a new word.",
      style: { color: "#ccc", fontSize: "12px" } }),
    dialog.countdown, pager, view.list, dialog.status,
    button("Continue", "glyphsr-review-continue", () => submit(dialog)),
  ]);
  const panel = el("div", { style: { display: "flex", gap: "14px", background: "#1b1b1b", color: "#eee", padding: "14px",
    borderRadius: "8px", border: "1px solid #444", fontFamily: "sans-serif", fontSize: "14px" } }, [view.canvas, side]);
  dialog.overlay = el("div", { className: "glyphsr-review", style: { position: "fixed", inset: "0", zIndex: "10000",
    background: "rgba(0,0,0,0.6)", display: "flex", alignItems: "center", justifyContent: "center" } }, [panel]);
  return dialog;
}

function startCountdown(dialog) {
  const end = Date.now() + dialog.detail.timeout * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    dialog.countdown.textContent = `The run goes on without changes in ${left} s.`;
  };
  tick();
  dialog.timer = setInterval(tick, 1000);
}

function closeDialog(nodeId) {
  if (!current || (nodeId !== undefined && String(current.detail.node) !== String(nodeId))) return;
  clearInterval(current.timer);
  current.overlay.remove();
  current = null;
}

async function openDialog(detail) {
  const { ok } = await post(`${routeOf(detail)}/open`, { prompt_id: detail.prompt_id });
  if (!ok) return; // the node stopped waiting already
  closeDialog();
  current = buildDialog(detail);
  document.body.append(current.overlay);
  showPage(current, 0);
  startCountdown(current);
}

// Tell the server this browser has the dialog, once per client id (a new id after a reconnect): only
// such browsers are asked to review, so a script with a websocket never makes a run wait.
let announcedId = null;
async function announceBrowser() {
  const id = api.clientId;
  if (!id || id === announcedId) return;
  announcedId = id;
  const { ok } = await post("/glyphsr/review-browser", { client_id: id });
  if (!ok) announcedId = null;
}

app.registerExtension({
  name: "GlyphSR.ReviewWords",
  setup() {
    api.addEventListener(OPEN_EVENT, (event) => { openDialog(event.detail); });
    api.addEventListener(CLOSED_EVENT, (event) => closeDialog(event.detail?.node));
    api.addEventListener("status", announceBrowser); // the server's greeting carries the client id
    announceBrowser();
  },
});
