"""The control page of `show --http`: one HTML page that builds itself from the show's own tables.

GET / serves PAGE, which holds no data. Its script reads GET /controls (every param
with its range and value, every verb a client may send: built from the param
registry and the verb table by `controls_doc`, so a new param or verb shows up
on the page with no change here), polls GET /status, and shows GET /frame.jpg,
a thumbnail of the output. A slider sends POST /set, a button POST /verb.

Off loopback every request but the page itself needs the token: the page asks
for it once, keeps it in the browser's localStorage and sends it as
`Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.stage.show import Show

THUMB_WIDTH = 320  # px: the thumbnail's width at most (a frame is decimated by a whole step)


def controls_doc(show: Show) -> dict[str, Any]:
    """{"params": [{address, type, lo, hi, value, unit, description}], "verbs": [{address, arg,
    description}]}: what the page draws (built on the frame loop, so values are one frame's)."""
    params = [
        {
            "address": p.address,
            "type": p.type,
            "lo": p.lo,
            "hi": p.hi,
            "value": p.target,  # where it is going: a smoothed param's slider does not crawl
            "unit": p.unit,
            "description": p.description,
        }
        for p in show.registry
    ]
    verbs = [
        {"address": a, "arg": v.arg, "description": v.description}
        for a, v in show.space.osc_verbs()
        if v.owner != "osc" and not a.endswith("/")
    ]
    return {"params": params, "verbs": verbs}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latent Stage</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#111;color:#ddd}
header{display:flex;gap:12px;align-items:flex-start;padding:8px;background:#1b1b1b;flex-wrap:wrap}
#thumb{width:320px;max-width:100%;background:#000;border:1px solid #333}
#status{font:12px ui-monospace,monospace;white-space:pre;margin:0;min-width:260px}
#summary{font-size:16px;margin:6px 2px}
#error{color:#f86;padding:0 8px}
section{padding:4px 8px}
h2{font-size:14px;margin:10px 0 4px;color:#9cf}
.row{display:flex;align-items:center;gap:8px;margin:2px 0}
.row label{width:200px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.row input[type=range]{flex:1;min-width:120px}
.row output{width:64px;text-align:right;font:12px ui-monospace,monospace}
button{background:#333;color:#eee;border:1px solid #555;border-radius:4px;padding:6px 10px;margin:2px}
button:active{background:#555}
.verb input{width:90px;background:#222;color:#eee;border:1px solid #555}
</style></head>
<body>
<header><img id="thumb" alt="output">
<div style="flex:1"><div id="transport"></div><div id="summary">connecting...</div>
<details><summary>status</summary><pre id="status"></pre></details></div></header>
<div id="error"></div>
<section id="verbs"></section>
<section id="params"></section>
<script>
"use strict";
const KEY = "latent-stage-token";
let token = localStorage.getItem(KEY) || "";
let asking = null;  // the one pending token question: every request that met a 401 waits for it
const MAIN = ["/setlist/prev", "/setlist/next", "/mixer/fade", "/mixer/cut", "/show/blackout", "/show/freeze"];

async function call(method, path, body, retried) {
  const headers = token ? {"Authorization": "Bearer " + token} : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  if (r.status === 401 && !retried) {
    if (!asking) {
      asking = Promise.resolve().then(() => {
        token = prompt("This show asks for its token (printed in its log at startup):") || "";
        localStorage.setItem(KEY, token);
      });
    }
    await asking;
    return call(method, path, body, true);
  }
  if (r.status === 401) {
    asking = null;  // refused: the next request asks again
    throw new Error("the token was refused");
  }
  return r;
}

function say(text) { document.getElementById("error").textContent = text; }

function verbButton(v) {
  const box = document.createElement("span");
  box.className = "verb";
  const b = document.createElement("button");
  b.textContent = v.address;
  b.title = v.description;
  let input = null;
  if (v.arg !== "trigger") {
    input = document.createElement("input");
    input.placeholder = v.arg;
    box.appendChild(input);
  }
  b.onclick = () => {
    const body = {address: v.address};
    if (input && input.value !== "") {
      const n = Number(input.value);
      body.value = input.value.trim() !== "" && isFinite(n) ? n : input.value;
    }
    call("POST", "/verb", body).then(r => r.ok ? say("") : r.json().then(e => say(e.error))).catch(e => say(e.message));
  };
  box.prepend(b);  // the button, then its argument
  return box;
}

const sliders = {};
let sending = {};
function slider(p) {
  const row = document.createElement("div");
  row.className = "row";
  const label = document.createElement("label");
  label.textContent = p.address;
  label.title = p.description + (p.unit ? " (" + p.unit + ")" : "");
  const s = document.createElement("input");
  s.type = "range"; s.min = p.lo; s.max = p.hi; s.value = p.value;
  s.step = p.type === "float" ? (p.hi - p.lo) / 1000 : 1;
  s.dataset.address = p.address;
  const out = document.createElement("output");
  out.textContent = Number(p.value).toFixed(p.type === "float" ? 3 : 0);
  s.oninput = () => {
    out.textContent = Number(s.value).toFixed(p.type === "float" ? 3 : 0);
    if (sending[p.address]) { sending[p.address] = "again"; return; }  // at most one request in flight per slider
    const send = () => {
      sending[p.address] = true;
      call("POST", "/set", {address: p.address, value: Number(s.value)})
        .then(r => r.ok ? say("") : r.json().then(e => say(e.error))).catch(e => say(e.message))
        .finally(() => {
          const again = sending[p.address] === "again";
          sending[p.address] = false;
          if (again) send();
        });
    };
    send();
  };
  sliders[p.address] = {s, out, p};
  row.append(label, s, out);
  return row;
}

async function build() {
  const r = await call("GET", "/controls");
  if (!r.ok) throw new Error("GET /controls: " + r.status);
  const doc = await r.json();
  if (!doc.params) { setTimeout(() => build().catch(e => say(e.message)), 500); return; }  // first publish pending
  const transport = document.getElementById("transport");
  for (const v of doc.verbs.filter(v => MAIN.includes(v.address))) transport.appendChild(verbButton(v));
  const verbs = document.getElementById("verbs");
  const vh = document.createElement("h2"); vh.textContent = "verbs"; verbs.appendChild(vh);
  for (const v of doc.verbs) verbs.appendChild(verbButton(v));
  const params = document.getElementById("params");
  let group = "";
  for (const p of doc.params) {
    const g = p.address.split("/").slice(0, p.address.startsWith("/deck/") ? 3 : 2).join("/");
    if (g !== group) { group = g; const h = document.createElement("h2"); h.textContent = g; params.appendChild(h); }
    params.appendChild(slider(p));
  }
  document.body.dataset.ready = "1";  // for scripts driving the page
}

function summary(st) {
  const ms = st.frame_ms || {};
  const parts = [(st.fps || 0).toFixed(1) + " fps", "p99 " + (ms.p99 || 0).toFixed(1) + " ms"];
  parts.push("late " + st.late_frames);
  for (const [d, name] of Object.entries(st.decks || {})) parts.push(d + ": " + name);
  if (st.setlist) parts.push("setlist " + st.setlist.name + " #" + st.setlist.item);
  if (st.hours) parts.push(st.hours.open ? "open" : "closed");
  if (st.audio) parts.push("underruns " + st.audio.underruns);
  if (st.restarts) parts.push("restarts " + st.restarts);
  if ((st.warnings || []).length) parts.push("warnings " + st.warnings.length);
  return parts.join("  ·  ");
}

async function poll() {
  try {
    const r = await call("GET", "/status");
    if (r.ok) {
      const st = await r.json();
      const {params, ...rest} = st;
      document.getElementById("status").textContent = JSON.stringify(rest, null, 1);
      document.getElementById("summary").textContent = summary(st);
      for (const [a, v] of Object.entries(params || {})) {
        const x = sliders[a];
        if (x && document.activeElement !== x.s && !sending[a]) {
          x.s.value = v; x.out.textContent = Number(v).toFixed(x.p.type === "float" ? 3 : 0);
        }
      }
    }
    const f = await call("GET", "/frame.jpg");
    if (f.ok) {
      const img = document.getElementById("thumb");
      const old = img.src;
      img.src = URL.createObjectURL(await f.blob());
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    }
  } catch (e) { say(e.message); }
  setTimeout(poll, 1000);
}

function start() { build().catch(e => { say(e.message); setTimeout(start, 2000); }); }
start();
poll();
</script></body></html>
"""
