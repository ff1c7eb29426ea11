"""The dashboard's one page: HTML, CSS and script inline (no files to ship with the
package). It asks for the operator's key, reads ``/v1/operator/stream`` with ``fetch``
and redraws on each event."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Qingsuan sandbox 清算沙箱</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.45 system-ui, "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif;
         margin: 0; padding: 1.2em 1.6em; color: #1d2430; background: #f5f6f8; }
  h1 { font-size: 1.25em; margin: 0 0 .6em; font-weight: 600; }
  h2 { font-size: 1em; margin: 1.2em 0 .3em; font-weight: 600; color: #44506a; }
  .zh { color: #6b7488; font-weight: normal; margin-left: .3em; }
  form { margin-bottom: 1em; }
  #state { color: #b00020; margin-left: .6em; }
  #live { color: #1a7f37; margin-left: .6em; }
  .bar { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: .8em; }
  .card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .6em .9em; }
  .card .label { color: #5a6478; font-size: .9em; }
  .card b { display: block; font-size: 1.35em; font-variant-numeric: tabular-nums;
            white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .card .sub { color: #5a6478; font-size: .9em; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; width: 100%; background: #fff;
          border: 1px solid #dde1e8; border-radius: 6px; }
  th, td { padding: .3em .7em; border-bottom: 1px solid #eceef2; text-align: right;
           white-space: nowrap; font-variant-numeric: tabular-nums; }
  th { font-weight: 600; color: #44506a; background: #fafbfc; vertical-align: bottom; }
  th .zh { display: block; margin: 0; font-size: .85em; }
  th:first-child, td:first-child, td.text, th.text { text-align: left; }
  td.queue { white-space: normal; min-width: 9em; }
  .scroll { overflow-x: auto; }  /* a wide table scrolls in its box, not the page */
  .neg { color: #b00020; }
  .cap { color: #7a8398; }
  .meter { display: block; height: 4px; background: #eceef2; border-radius: 2px;
           margin-top: 2px; }
  .meter i { display: block; height: 4px; background: #3b6fd8; border-radius: 2px; }
  .meter i.high { background: #d97706; }
  .pill { display: inline-block; padding: 0 .5em; border-radius: 9px; font-size: .9em;
          background: #eceef2; }
  .pill.settled, .pill.credited { background: #dcf3e3; color: #135c2a; }
  .pill.queued, .pill.held, .pill.netted, .pill.accepted { background: #fdf0d5; color: #7a4b00; }
  .pill.rejected, .pill.returned, .pill.cancelled { background: #fbe0e3; color: #8a1020; }
</style>
</head>
<body>
<h1>清算 Qingsuan: the CNAPS sandbox <span class="zh">支付系统沙箱</span></h1>
<form id="login">Operator key <span class="zh">运营方密钥</span>
  <input id="key" type="password" size="36" autocomplete="off">
  <button>Watch</button><span id="live"></span><span id="state"></span></form>
<div class="bar">
  <div class="card"><span class="label">clock <span class="zh">时钟</span></span>
    <b id="now">-</b><span class="sub" id="mode"></span></div>
  <div class="card"><span class="label">HVPS phase <span class="zh">大额营业阶段</span></span>
    <b id="phase">-</b><span class="sub" id="day"></span></div>
  <div class="card"><span class="label">HVPS queue <span class="zh">大额排队</span></span>
    <b id="queued">-</b><span class="sub" id="queuedv"></span></div>
  <div class="card"><span class="label">throughput <span class="zh">吞吐</span></span>
    <b id="rate">-</b><span class="sub" id="entries"></span></div>
</div>
<h2>Participants <span class="zh">参与者 · 金额单位：元 (CNY)</span></h2>
<div class="scroll"><table id="participants"><thead><tr>
  <th>participant<span class="zh">参与者</span></th>
  <th>settlement balance<span class="zh">清算账户余额</span></th>
  <th class="text">HVPS queue by priority<span class="zh">大额排队 (按优先级)</span></th>
  <th>BEPS position / cap<span class="zh">小额净额 / 上限</span></th>
  <th>IBPS position / cap<span class="zh">网银净额 / 上限</span></th>
  <th>gridlock settled<span class="zh">死锁化解</span></th>
</tr></thead><tbody></tbody></table></div>
<h2>Last payments <span class="zh">最近支付</span></h2>
<div class="scroll"><table id="payments"><thead><tr>
  <th>payment<span class="zh">支付</span></th>
  <th class="text">system<span class="zh">系统</span></th>
  <th class="text">from → to<span class="zh">付款行 → 收款行</span></th>
  <th>amount<span class="zh">金额 (元)</span></th>
  <th class="text">status<span class="zh">状态</span></th><th>at<span class="zh">时间</span></th>
</tr></thead><tbody></tbody></table></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const PHASES = {open: "open 营业", clearing_window: "clearing window 清算窗口",
                closed: "closed 停止营业"};
// "1234567.80" -> "1,234,567.80": the string is grouped, never turned into a number
function yuan(text) {
  if (text === undefined || text === null) return "-";
  const sign = text.startsWith("-") ? "-" : "";
  const [whole, fen] = text.replace("-", "").split(".");
  return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + (fen || "00");
}
// a count (an integer) grouped by thousands
const count = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
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
// a position against its cap, and a meter of the cap a debit position uses
function net(n, cls) {
  if (!n) return cell("-", cls);
  const td = cell("", cls);
  const pos = document.createElement("span");
  pos.textContent = yuan(n.position);
  if (n.position.startsWith("-")) pos.className = "neg";
  const cap = document.createElement("span");
  cap.className = "cap";
  cap.textContent = " / " + yuan(n.cap);
  const meter = document.createElement("span");
  meter.className = "meter";
  const used = document.createElement("i");
  // (a ratio for a drawing only: the amounts shown are the strings above)
  const share = n.position.startsWith("-") && Number(n.cap) > 0
    ? Math.min(1, Number(n.position.slice(1)) / Number(n.cap)) : 0;
  used.style.width = (share * 100).toFixed(1) + "%";
  if (share > 0.8) used.className = "high";
  meter.append(used);
  td.append(pos, cap, meter);
  return td;
}
function status(text) {
  const td = cell("", "text");
  const pill = document.createElement("span");
  pill.className = "pill " + text;
  pill.textContent = text;
  td.append(pill);
  return td;
}
function show(doc) {
  $("now").textContent = doc.clock.now.replace("T", " ").slice(0, 19);
  $("mode").textContent = doc.clock.mode + " clock (Beijing)" +
    (doc.clock.next_due ? " · next " + doc.clock.next_due.slice(11, 16) : "");
  $("phase").textContent = PHASES[doc.clock.hvps_phase] || doc.clock.hvps_phase;
  $("day").textContent = doc.clock.business_date
    ? "business day 工作日 " + doc.clock.business_date : "no business day";
  $("queued").textContent = count(doc.hvps_queued);
  $("queuedv").textContent = yuan(doc.hvps_queued_value) + " 元";
  $("rate").textContent = count(doc.entries_per_s) + " entries/s";
  $("entries").textContent = count(doc.log_entries) + " log entries 日志条目";
  rows("participants", doc.participants, (p) => [
    cell(p.name), cell(yuan(p.balance), "balance"),
    cell(Object.entries(p.queued).map(([k, v]) => k + " " + v).join(", ") || "-",
         "queue text"),
    net(p.net.BEPS, "beps"), net(p.net.IBPS, "ibps"), cell(yuan(p.gridlock_settled))]);
  rows("payments", doc.last_payments, (x) => [
    cell(x.id), cell(x.system, "text"), cell(x.from ? x.from + " → " + x.to : "-", "text"),
    cell(x.amount ? yuan(x.amount) : "-", "amount"), status(x.status),
    cell((x.at || "").slice(11, 19))]);
  $("live").textContent = "● live";
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
  $("live").textContent = "";
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
