// The poke page: drag on the image, the server renders, the video loops in
// place. Positions and shoves travel as fractions of the image.
// Drawing lives in stage.js, loaded first.
"use strict";

// ---- talking to the server -------------------------------------------------

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Error("cannot reach the server; is it still running?");
  }
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    const why = body && body.error ? body.error : `HTTP ${response.status}`;
    throw new Error(why);
  }
  if (body === null) throw new Error("the server sent an unreadable answer");
  return body;
}

const postJson = (path, value) => api(path, {
  method: "POST", headers: {"content-type": "application/json"},
  body: JSON.stringify(value),
});

function showError(message) { $("error").textContent = message || ""; }

async function guarded(work) {
  state.busy += 1;
  document.body.classList.add("busy");
  try {
    showError("");
    await work();
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy -= 1;
    if (!state.busy) document.body.classList.remove("busy");
  }
}
function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser could not show the frames"));
    img.src = src;
  });
}

function describeTiming(t, what) {
  return `${what}: server ${t.server_ms.toFixed(0)} ms ` +
    `(queue ${t.queue_ms.toFixed(0)} ms, model ${t.compute_ms.toFixed(0)} ms ` +
    `in a batch of ${t.batch})`;
}

// Renders the current pokes; false when the server refused them.
async function render() {
  const seq = ++state.seq;
  if (!state.pokes.length) { stopVideo(); updateControls(); return true; }
  $("status").textContent = "rendering…";
  let ok = false;
  await guarded(async () => {
    const answer = await postJson("/api/poke",
      {image: state.image.id, pokes: state.pokes});
    const sprite = await loadImage(answer.frames);
    if (seq !== state.seq) return;  // A newer poke is on its way.
    play(answer, sprite);
    const n = state.pokes.length;
    $("status").textContent = describeTiming(answer.timing,
      n === 1 ? "1 poke" : `${n} pokes`);
    ok = true;
  });
  if (seq === state.seq && !ok) $("status").textContent = "";
  return ok || seq !== state.seq;
}

// ---- heat map --------------------------------------------------------------

async function heatAt(point) {
  setHeatMode(false);
  $("status").textContent = "poking this pixel many times…";
  await guarded(async () => {
    const answer = await postJson("/api/heatmap",
      {image: state.image.id, point});
    state.heat = await loadImage(answer.heatmap);
    heatCanvas.dataset.ready = "1";
    redrawHeat();
    $("status").textContent = describeTiming(answer.timing,
      `heat map of ${answer.pokes} pokes`) +
      `; strongest motion ${answer.max_motion_px.toFixed(1)} px`;
  });
}

function setHeatMode(on) {
  state.heatMode = on;
  stage.classList.toggle("heat-mode", on);
  $("heatmap").classList.toggle("active", on);
  $("hint").textContent = on
    ? "Click a pixel: the colours show what moves with it."
    : "Press on an object, drag the way it should move, release.";
}

function clearHeat() {
  state.heat = null;
  heatCanvas.dataset.ready = "";
  redrawHeat();
}

// ---- pointer: press, drag, release -----------------------------------------

stage.addEventListener("pointerdown", (event) => {
  if (!state.image || event.button !== 0) return;
  stage.setPointerCapture(event.pointerId);
  const [x, y] = fractions(event);
  state.drag = {x, y, cx: event.clientX, cy: event.clientY, moved: false,
                poke: [x, y, 0, 0]};
});

stage.addEventListener("pointermove", (event) => {
  const d = state.drag;
  if (!d) return;
  const [x, y] = fractions(event);
  d.poke = [d.x, d.y, x - d.x, y - d.y];
  d.moved = d.moved ||
    Math.hypot(event.clientX - d.cx, event.clientY - d.cy) >= MIN_DRAG_PX;
  drawArrows();
});

function release(event) {
  const d = state.drag;
  if (!d) return;
  state.drag = null;
  if (state.heatMode) { drawArrows(); heatAt([d.x, d.y]); return; }
  if (!d.moved) {
    drawArrows();
    showError("Drag a little before releasing: the arrow is the shove.");
    return;
  }
  if (state.pokes.length >= state.info.max_pokes) {
    drawArrows();
    showError(`At most ${state.info.max_pokes} pokes: undo or clear one first.`);
    return;
  }
  state.pokes.push(d.poke);
  clearHeat();
  drawArrows();
  render().then((ok) => {
    // A refused poke (say, outside the model's square) is taken back.
    if (!ok && state.pokes[state.pokes.length - 1] === d.poke) {
      state.pokes.pop();
      drawArrows();
    }
  });
}
stage.addEventListener("pointerup", release);
stage.addEventListener("pointercancel", () => { state.drag = null; drawArrows(); });

// ---- buttons ---------------------------------------------------------------

function updateControls() {
  const n = state.pokes.length, max = state.info ? state.info.max_pokes : 0;
  $("count").textContent = state.image
    ? `${n} of ${max} pokes` + (n ? "" : ": drag on the image") : "";
  $("undo").disabled = !n;
  $("clear").disabled = !n && !state.heat;
  $("continue").disabled = !state.video;
  $("heatmap").disabled = !state.image;
  for (const id of ["mp4", "gif"]) $(id).classList.toggle("disabled", !state.video);
}

$("undo").addEventListener("click", () => {
  state.pokes.pop();
  drawArrows();
  render();
});

$("clear").addEventListener("click", () => {
  state.pokes = [];
  state.seq++;
  stopVideo();
  clearHeat();
  drawArrows();
  $("status").textContent = "";
  showError("");
});

$("continue").addEventListener("click", () => guarded(async () => {
  const image = await postJson("/api/continue", {video: state.video.id});
  await setImage(image);
  $("status").textContent = "The last frame is the new image: poke again.";
}));

$("heatmap").addEventListener("click", () => setHeatMode(!state.heatMode));

document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z" && state.pokes.length) {
    event.preventDefault();
    $("undo").click();
  }
});

// ---- images ----------------------------------------------------------------

async function setImage(image) {
  state.seq++;
  state.image = image;
  state.pokes = [];
  stopVideo();
  clearHeat();
  stage.classList.remove("no-image");
  // Name the model's square only where it is not simply the whole image.
  const whole = image.box.every((v, i) => Math.abs(v - [0, 0, 1, 1][i]) < 1e-9);
  $("box-label").textContent = whole ? ""
    : image.fit === "squash" ? "the model sees all of it, squashed"
    : "the model sees this square";
  $("box-label").hidden = whole;
  if (image.fit === "pad") {
    $("box-label").textContent = "the model sees this square (dotted: your image)";
  }
  photo.src = image.url;
  await photo.decode().catch(() => {});
  stage.dataset.image = image.id;
  for (const el of $("gallery").children) {
    el.classList.toggle("current", el.dataset.id === image.id);
  }
  layout();
  updateControls();
}

async function upload(file) {
  if (file.size > state.info.max_upload_bytes) {
    const mib = (state.info.max_upload_bytes / 2 ** 20).toFixed(0);
    throw new Error(`That file is larger than ${mib} MiB; choose a smaller one.`);
  }
  $("status").textContent = "uploading…";
  const image = await api(`/api/upload?fit=${$("fit").value}`,
    {method: "POST", body: file});
  state.file = file;  // Kept to fit it again when "fit" changes.
  await setImage(image);
  $("status").textContent = `${image.width}x${image.height} image ready: drag on it.`;
}

$("file").addEventListener("change", () => guarded(async () => {
  const file = $("file").files[0];
  $("file").value = "";
  if (file) await upload(file);
}));

// A new fit applies to the photo on show, if it was an upload.
$("fit").addEventListener("change", () => guarded(async () => {
  if (state.file && state.image && state.image.label === "upload") {
    await upload(state.file);
  }
}));

function fillGallery(images) {
  for (const image of images) {
    const img = document.createElement("img");
    img.src = image.url;
    img.alt = image.label;
    img.title = image.label;
    img.dataset.id = image.id;
    img.addEventListener("click", () => guarded(() => setImage(image)));
    $("gallery").append(img);
  }
}

async function start() {
  stage.classList.add("no-image");
  updateControls();
  await guarded(async () => {
    state.info = await api("/api/info");
    const m = state.info.model;
    $("model").textContent = `model: ${m.workdir}, step ${m.step}, ` +
      `${m.resolution}x${m.resolution}, ${m.num_frames} frames, ` +
      `${m.parameters.toLocaleString()} parameters`;
    $("fit").value = state.info.fit;
    fillGallery(state.info.gallery);
    if (state.info.default_image) await setImage(state.info.default_image);
    document.body.dataset.ready = "1";
  });
}

window.addEventListener("resize", layout);
start();
