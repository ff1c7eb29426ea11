"""The dashboard's one page: HTML, CSS and script inline (no files to ship with the
package). It asks for the operator's key, reads ``/v1/operator/stream`` with ``fetch``
and redraws on each event."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Qingsuan sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .5em; }
  table { border-collapse: collapse; margin: .5em 0 1.5em; }
  th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .bar { display: flex; gap: 2em; flex-wrap: wrap; margin-bottom: 1em; }
  .bar div b { display: block; font-size: 1.4em; }
  #state { color: #a00; }
  .neg { color: #a00; }
</style>
</head>
<body>
<h1>清算 Qingsuan: the CNAPS sandbox</h1>
<form id="login">Operator key: <input id="key" type="password" size="40">
  <button>Watch</button> <span id="state"></span></form>
<div class="bar">
  <div>clock<b id="now">-</b><span id="mode"></span></div>
  <div>HVPS<b id="phase">-</b><span id="day"></span></div>
  <div>HVPS queue<b id="queued">-</b><span id="queuedv"></span></div>
  <div>log entries<b id="entries">-</b><span id="rate"></span></div>
</div>
<table id="participants"><thead><tr><th>participant</th><th>settlement balance</th>
  <th>HVPS queue by priority</th><th>gridlock settled</th><th>BEPS position / cap</th>
  <th>IBPS position / cap</th></tr></thead><tbody></tbody></table>
<table id="payments"><thead><tr><th>last payments</th><th>system</th><th>status</th>
  <th>at</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function rows(id, items, make) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    tr.append(...make(item));
    return tr;
  }));
}
function net(n) {
  if (!n) return cell("-");
  return cell(n.position + " / " + n.cap, n.position.startsWith("-") ? "neg" : "");
}
function show(doc) {
  $("now").textContent = doc.clock.now.replace("T", " ").slice(0, 19);
  $("mode").textContent = doc.clock.mode + " clock";
  $("phase").textContent = doc.clock.hvps_phase;
  $("day").textContent = doc.clock.business_date || "";
  $("queued").textContent = doc.hvps_queued;
  $("queuedv").textContent = doc.hvps_queued_value + " CNY";
  $("entries").textContent = doc.log_entries;
  $("rate").textContent = doc.entries_per_s + " /s";
  rows("participants", doc.participants, (p) => [
    cell(p.name), cell(p.balance),
    cell(Object.entries(p.queued).map(([k, v]) => k + " " + v).join(", ") || "-"),
    cell(p.gridlock_settled), net(p.net.BEPS), net(p.net.IBPS)]);
  rows("payments", doc.last_payments, (x) => [
    cell(x.id), cell(x.system), cell(x.status), cell((x.at || "").slice(11, 19))]);
}
async function watch(key) {
  $("state").textContent = "";
  const answer = await fetch("/v1/operator/stream",
                             {headers: {"Authorization": "Bearer " + key}});
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    $("state").textContent = answer.status + " " + (body.message || "");
    return;
  }
  sessionStorage.setItem("qingsuan-key", key);
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.startsWith("data: ")) show(JSON.parse(event.slice(6)));
    }
  }
  $("state").textContent = "the stream ended (the server stopped?)";
}
$("login").addEventListener("submit", (e) => { e.preventDefault(); watch($("key").value); });
// /dashboard#key=KEY: the fragment stays in the browser (never sent, never logged)
const given = location.hash.startsWith("#key=") ? decodeURIComponent(location.hash.slice(5)) : "";
if (given) history.replaceState(null, "", location.pathname);
const saved = given || sessionStorage.getItem("qingsuan-key");
if (saved) watch(saved);
</script>
</body>
</html>
"""
