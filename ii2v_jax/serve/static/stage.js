// Drawing on the stage: the image, the model's square, arrows, the
// video and the heat map. Positions are fractions of the image.
"use strict";

const $ = (id) => document.getElementById(id);
const stage = $("stage"), photo = $("photo"), box = $("box");
const videoCanvas = $("video"), heatCanvas = $("heat"), svg = $("arrows");
const SVG_NS = "http://www.w3.org/2000/svg";
const MIN_DRAG_PX = 4;

const state = {
  info: null, image: null, pokes: [], video: null, timer: null,
  heatMode: false, drag: null, seq: 0, busy: 0, heat: null, file: null,
};

// ---- geometry: image fractions <-> the stage -------------------------------

// The stage spans the image and the model's square (which reaches past the
// image for the pad fit), in fractions of the image.
function extent() {
  const [bl, bt, bw, bh] = state.image.box;
  return {x0: Math.min(0, bl), x1: Math.max(1, bl + bw),
          y0: Math.min(0, bt), y1: Math.max(1, bt + bh)};
}

function pct(v, lo, hi) { return (100 * (v - lo) / (hi - lo)) + "%"; }

function place(el, left, top, width, height) {
  const e = extent();
  el.style.left = pct(left, e.x0, e.x1);
  el.style.top = pct(top, e.y0, e.y1);
  el.style.width = (100 * width / (e.x1 - e.x0)) + "%";
  el.style.height = (100 * height / (e.y1 - e.y0)) + "%";
}

function layout() {
  if (!state.image) return;
  const e = extent(), img = state.image;
  const aspect = ((e.x1 - e.x0) * img.width) / ((e.y1 - e.y0) * img.height);
  const maxW = $("left").clientWidth, maxH = window.innerHeight * 0.72;
  const w = Math.min(maxW, maxH * aspect);
  stage.style.width = w + "px";
  stage.style.height = (w / aspect) + "px";
  place(photo, 0, 0, 1, 1);
  place($("imgframe"), 0, 0, 1, 1);
  stage.classList.toggle("pad", img.fit === "pad");
  const [bl, bt, bw, bh] = img.box;
  for (const el of [box, videoCanvas, heatCanvas]) place(el, bl, bt, bw, bh);
  const dpr = window.devicePixelRatio || 1;
  for (const c of [videoCanvas, heatCanvas]) {
    c.width = Math.max(1, Math.round(c.clientWidth * dpr));
    c.height = Math.max(1, Math.round(c.clientHeight * dpr));
  }
  drawArrows();
  redrawHeat();
}

// Pointer position as fractions of the image.
function fractions(event) {
  const r = stage.getBoundingClientRect(), e = extent();
  return [e.x0 + (e.x1 - e.x0) * (event.clientX - r.left) / r.width,
          e.y0 + (e.y1 - e.y0) * (event.clientY - r.top) / r.height];
}

// ---- arrows ----------------------------------------------------------------

function arrow(x, y, dx, dy, draft) {
  const e = extent();
  const line = document.createElementNS(SVG_NS, "line");
  line.setAttribute("x1", pct(x, e.x0, e.x1));
  line.setAttribute("y1", pct(y, e.y0, e.y1));
  line.setAttribute("x2", pct(x + dx, e.x0, e.x1));
  line.setAttribute("y2", pct(y + dy, e.y0, e.y1));
  line.setAttribute("marker-end", "url(#head)");
  if (draft) line.classList.add("draft");
  const dot = document.createElementNS(SVG_NS, "circle");
  dot.setAttribute("cx", pct(x, e.x0, e.x1));
  dot.setAttribute("cy", pct(y, e.y0, e.y1));
  dot.setAttribute("r", 4);
  svg.append(line, dot);
}

function drawArrows() {
  for (const el of [...svg.querySelectorAll("line, circle")]) el.remove();
  if (!state.image) return;
  for (const p of state.pokes) arrow(...p, false);
  if (state.drag && state.drag.moved) arrow(...state.drag.poke, true);
  updateControls();
}

// ---- the video -------------------------------------------------------------

function stopVideo() {
  clearInterval(state.timer);
  state.timer = null;
  state.video = null;
  const ctx = videoCanvas.getContext("2d");
  ctx.clearRect(0, 0, videoCanvas.width, videoCanvas.height);
  videoCanvas.dataset.frame = "";
}

function drawFrame(i) {
  const v = state.video, ctx = videoCanvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(v.sprite, 0, i * v.size, v.size, v.size,
                0, 0, videoCanvas.width, videoCanvas.height);
  videoCanvas.dataset.frame = String(i);
}

function play(answer, sprite) {
  stopVideo();
  state.video = {id: answer.video, sprite, size: answer.frame_size,
                 count: answer.frame_count};
  let i = 0;
  drawFrame(0);
  state.timer = setInterval(() => {
    i = (i + 1) % state.video.count;
    drawFrame(i);
  }, 1000 / answer.fps);
  for (const [id, ext] of [["mp4", "mp4"], ["gif", "gif"]]) {
    $(id).href = `/api/export/${answer.video}.${ext}`;
  }
  updateControls();
}

function redrawHeat() {
  const ctx = heatCanvas.getContext("2d");
  ctx.clearRect(0, 0, heatCanvas.width, heatCanvas.height);
  if (!state.heat) return;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(state.heat, 0, 0, heatCanvas.width, heatCanvas.height);
}
