"""The app's one phone-sized page (``/app``): HTML, CSS and script inline (no files to ship
with the package). It logs in with the user's phone and app key, then reads and acts
through ``/v1/app`` with ``fetch`` (the key travels in the Authorization header, never in
a URL); amounts arrive as strings of yuan and are only regrouped, never computed."""

PAGE = r"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>Qingsuan Pay 清算付</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  * { box-sizing: border-box; }
  body { font: 15px/1.4 system-ui, "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif;
         margin: 0; color: #1d2430; background: #eef1f5; }
  main { max-width: 480px; margin: 0 auto; padding: 0 12px 24px; }
  header { background: #c8102e; color: #fff; padding: 14px 16px 16px; }
  header h1 { font-size: 18px; margin: 0; font-weight: 600; }
  header .who { font-size: 13px; opacity: .9; margin-top: 2px; }
  header .wallet { font-size: 13px; margin-top: 6px; }
  header .wallet b { font-size: 20px; font-variant-numeric: tabular-nums; }
  section { background: #fff; border-radius: 10px; margin-top: 12px; padding: 12px 14px;
            box-shadow: 0 1px 2px rgba(0,0,0,.06); }
  h2 { font-size: 15px; margin: 0 0 8px; font-weight: 600; }
  h2.bar { display: flex; justify-content: space-between; align-items: center; }
  .zh { color: #6b7488; font-weight: normal; margin-left: 4px; }
  label { display: block; font-size: 13px; color: #5a6478; margin: 8px 0 2px; }
  input, select { width: 100%; font: inherit; padding: 8px 10px; border: 1px solid #cfd5df;
                  border-radius: 6px; background: #fff; }
  button { font: inherit; border: 0; border-radius: 6px; padding: 9px 14px;
           background: #c8102e; color: #fff; cursor: pointer; }
  button.small { padding: 4px 10px; font-size: 13px; background: #eef1f5; color: #1d2430; }
  button.wide { width: 100%; margin-top: 10px; }
  button:disabled { opacity: .5; }
  .row { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; }
  .bank { padding: 10px 12px; border-radius: 8px; margin-top: 8px; color: #fff;
          background: linear-gradient(135deg, #3b5b92, #23395d); }
  .bank.credit { background: linear-gradient(135deg, #8a5a14, #5b3a0b); }
  .bank .pan { font-family: ui-monospace, "DejaVu Sans Mono", monospace; letter-spacing: 1px;
               font-size: 15px; margin-top: 4px; }
  .bank .bal { font-size: 19px; font-variant-numeric: tabular-nums; font-weight: 600; }
  .bank .small { font-size: 12px; opacity: .85; }
  .money { font-variant-numeric: tabular-nums; white-space: nowrap; }
  #qrbox { text-align: center; }
  #qr { width: 200px; height: 200px; image-rendering: pixelated; display: block;
        margin: 8px auto 4px; }
  #codeDigits { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 16px;
                letter-spacing: 1px; }
  #countdown { color: #5a6478; font-size: 13px; }
  #countdown.over { color: #b00020; }
  #countdown.ok { color: #1a7f37; font-weight: 600; }
  #qr.spent { opacity: .2; }  /* a used or expired code is not to be shown to anyone */
  .voucher { border: 1px dashed #e3a008; background: #fffaeb; border-radius: 8px;
             padding: 8px 10px; margin-top: 8px; }
  .voucher b { color: #c8102e; font-size: 17px; }
  .muted { color: #7a8398; font-size: 13px; }
  .ok { color: #1a7f37; font-size: 14px; margin-top: 6px; }
  .err { color: #b00020; font-size: 14px; margin-top: 6px; }
  .hidden { display: none; }
  .statement { border-bottom: 1px solid #eceef2; padding-bottom: 6px; margin-bottom: 4px; }
  .stmtHead { margin-bottom: 2px; flex-wrap: wrap; justify-content: flex-start; }
  .stmtHead b { white-space: nowrap; margin-right: 8px; }
  .pair { display: flex; gap: 8px; margin-top: 10px; }
  .pair button { flex: 1; }
  button.second { background: #fff; color: #c8102e; border: 1px solid #c8102e; }
  .moves, .rides, #transitToday { margin-top: 8px; }
  .move, .ride { border-top: 1px solid #eceef2; padding: 5px 0; font-size: 14px; }
  .move .in { color: #1a7f37; }
  .tag { font-size: 12px; border-radius: 4px; padding: 1px 6px; white-space: nowrap;
         background: #eef1f5; color: #5a6478; }
  .tag.cleared, .tag.done { background: #e7f5ec; color: #1a7f37; }
  .tag.declined, .tag.failed { background: #fde8ec; color: #b00020; }
  .okTag { color: #1a7f37; font-size: 12px; background: #e7f5ec; border-radius: 4px;
           padding: 1px 6px; white-space: nowrap; }
</style>
</head>
<body>
<header>
  <h1>Qingsuan Pay <span class="zh" style="color:#fde2e6">清算付</span></h1>
  <div class="who" id="who">Log in 登录</div>
  <div class="wallet hidden" id="walletLine">Wallet 钱包余额 <b id="wallet" class="money"></b>
  </div>
</header>
<main>
<section id="login">
  <h2>Log in <span class="zh">登录</span></h2>
  <form id="loginForm">
    <label for="phone">Phone 手机号</label>
    <input id="phone" inputmode="numeric" autocomplete="username" placeholder="13800000001">
    <label for="key">App key 密钥</label>
    <input id="key" type="password" autocomplete="current-password">
    <button class="wide" type="submit">Log in 登录</button>
    <div id="loginMsg" class="err"></div>
  </form>
</section>

<div id="app" class="hidden">
<section id="cardsBox">
  <h2 class="bar"><span>Cards <span class="zh">我的银行卡</span></span>
      <button class="small" id="refresh" type="button">Refresh 刷新</button></h2>
  <div class="muted" id="cardsNote">Balances asked of each bank now 实时查询</div>
  <div id="cards"></div>
  <details id="bindBox"><summary class="muted">Bind a card 绑卡</summary>
    <form id="bindForm">
      <label for="bindPan">Card number 卡号</label>
      <input id="bindPan" inputmode="numeric" autocomplete="off">
      <label for="bindName">Cardholder 持卡人姓名</label>
      <input id="bindName" autocomplete="off">
      <button class="wide" type="submit">Bind 绑定</button>
      <div id="bindMsg"></div>
    </form>
  </details>
</section>

<section id="walletBox">
  <h2 class="bar"><span>Wallet <span class="zh">钱包</span></span>
      <b class="money" id="walletBal"></b></h2>
  <form id="moveForm">
    <label for="moveCard">Bank card 银行卡</label>
    <select id="moveCard" class="debitPick"></select>
    <label for="moveAmount">Amount 金额 (¥)</label>
    <input id="moveAmount" inputmode="decimal" placeholder="0.00" autocomplete="off">
    <div class="pair">
      <button type="submit" id="topUp">Top up 充值</button>
      <button type="button" class="second" id="withdraw">Withdraw 提现</button>
    </div>
    <div id="moveMsg"></div>
  </form>
  <div class="moves" id="moves"></div>
</section>

<section id="codeBox">
  <h2>Payment code <span class="zh">付款码</span></h2>
  <label for="codeCard">Pay with 付款卡</label>
  <select id="codeCard" class="cardPick"></select>
  <button class="wide" id="showCode" type="button">Show payment code 出示付款码</button>
  <div id="qrbox" class="hidden">
    <img id="qr" alt="payment code QR 付款码">
    <div id="codeDigits"></div>
    <div id="countdown"></div>
  </div>
  <div id="codeMsg"></div>
</section>

<section id="payBox">
  <h2>Scan to pay <span class="zh">扫一扫付款</span></h2>
  <form id="payForm">
    <label for="merchant">Merchant's code 收款码</label>
    <input id="merchant" placeholder="qingsuan://merchant?... or POS00001" autocomplete="off">
    <label for="amount">Amount 金额 (¥)</label>
    <input id="amount" inputmode="decimal" placeholder="0.00" autocomplete="off">
    <label for="payCard">Card 付款卡</label>
    <select id="payCard" class="cardPick"></select>
    <label for="payVoucher">Voucher 消费券</label>
    <select id="payVoucher"><option value="">none 不使用</option></select>
    <button class="wide" type="submit">Pay 付款</button>
    <div id="payMsg"></div>
  </form>
</section>

<section id="transitBox">
  <h2>Transit code <span class="zh">乘车码</span></h2>
  <div class="muted" id="transitNote">The gate lets you through offline; the fare is
    charged to the card in the next morning's batch 先乘车后扣款</div>
  <form id="rideForm">
    <label for="rideCard">Card 扣款卡</label>
    <select id="rideCard" class="cardPick"></select>
    <div class="pair">
      <div style="flex:1"><label for="gate">Gate 闸机</label>
        <input id="gate" placeholder="GATE0001" autocomplete="off"></div>
      <div style="flex:1"><label for="fare">Fare 票价 (¥)</label>
        <input id="fare" inputmode="decimal" placeholder="0.00" autocomplete="off"></div>
    </div>
    <button class="wide" type="submit">Show at the gate 刷码过闸</button>
    <div id="rideMsg"></div>
  </form>
  <div class="muted" id="transitToday"></div>
  <div class="rides" id="rides"></div>
</section>

<section id="vouchersBox">
  <h2>Vouchers <span class="zh">消费券</span></h2>
  <div id="campaigns"></div>
  <div id="myVouchers"></div>
  <div id="voucherMsg"></div>
</section>

<section id="repayBox">
  <h2>Credit card repayment <span class="zh">信用卡还款</span></h2>
  <div id="statements"></div>
  <form id="repayForm">
    <label for="repayCard">Repay card 还款卡</label>
    <select id="repayCard"></select>
    <label for="repayFrom">From 付款卡</label>
    <select id="repayFrom"></select>
    <label for="repayAmount">Amount 金额 (¥)</label>
    <input id="repayAmount" inputmode="decimal" placeholder="0.00" autocomplete="off">
    <button class="wide" type="submit">Repay 还款</button>
    <div id="repayMsg"></div>
  </form>
</section>
<p class="muted" style="text-align:center"><button class="small" id="logout"
  type="button">Log out 退出</button></p>
</div>
</main>
<script>
"use strict";
let KEY = null, CARDS = [], timer = null, codeUrl = null;
const $ = (id) => document.getElementById(id);

// "1234567.50" -> "1,234,567.50": the amount's digits regrouped, never a float
function yuan(text) {
  if (text === null || text === undefined) return "-";
  const neg = text.startsWith("-"), body = neg ? text.slice(1) : text;
  const [whole, frac] = body.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "-" : "") + "¥" + grouped + "." + ((frac || "") + "00").slice(0, 2);
}
// the first 6 and last 4 digits only, whatever the number's length
function masked(m) { return m.slice(0, 4) + " " + m.slice(4, 6) + "** **** " + m.slice(-4); }
// a credit card's account below zero is what its holder owes (shown without the sign)
function owes(c) { return c.kind === "credit" && String(c.balance).startsWith("-"); }
const STATUS = {claimed: "unused 未使用", used: "used 已使用", expired: "expired 已过期"};
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function say(id, text, ok) { const el = $(id); el.className = ok ? "ok" : "err";
  el.textContent = text; }

async function call(method, path, body) {
  const opts = {method, headers: {"Authorization": "Bearer " + KEY}};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body); }
  const res = await fetch("/v1/app" + path, opts);
  const doc = await res.json();
  if (!res.ok) { const e = new Error(doc.message || res.statusText);
    e.reason = doc.reason; e.field = doc.field; e.status = res.status; throw e; }
  return doc;
}
function why(e) { return (e.reason ? e.reason + ": " : "") + e.message; }

$("loginForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const phone = $("phone").value.trim(), key = $("key").value;
  const res = await fetch("/v1/app/login", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({phone, key})});
  const doc = await res.json();
  if (!res.ok) { say("loginMsg", "登录失败 · " + doc.message + " (" + res.status + ")");
    return; }
  KEY = key; $("key").value = "";
  $("login").classList.add("hidden"); $("app").classList.remove("hidden");
  showMe(doc);
  await Promise.all([loadCards(), loadVouchers(), loadStatements(), loadWallet(),
                     loadTransit()]);
});
$("logout").addEventListener("click", () => location.reload());

function showMe(doc) {
  $("who").textContent = doc.name + " · " + doc.phone.slice(0, 3) + "****" +
    doc.phone.slice(-4) + " · " + doc.institution;
  $("wallet").textContent = yuan(doc.wallet);
  $("walletBal").textContent = yuan(doc.wallet);
  $("walletLine").classList.remove("hidden");
}

async function loadCards() {
  try {
    const doc = await call("GET", "/cards");
    CARDS = doc.cards;
    $("cards").innerHTML = CARDS.length ? CARDS.map((c) => `
      <div class="bank ${c.kind === "credit" ? "credit" : ""}" data-card="${esc(c.card_id)}">
        <div class="row"><span>${esc(c.issuer)} · ${c.kind === "credit" ?
          "Credit 信用卡" : "Debit 借记卡"}</span>
          <span class="bal money">${c.response_code !== "00" ? esc(c.message || "no answer")
            : owes(c) ? yuan(c.balance.slice(1)) : yuan(c.balance)}</span></div>
        <div class="pan">${esc(masked(c.card))}</div>
        <div class="small">${owes(c) ? "Owed 已用额度 (repay below 见下方还款)" :
          "Balance 余额"}</div>
      </div>`).join("") : '<p class="muted">No card bound yet 尚未绑卡</p>';
    const opts = (pick) => CARDS.filter(pick).map((c) =>
      `<option value="${esc(c.card_id)}">${esc(c.issuer)} ${esc(c.card.slice(-4))}</option>`)
      .join("");
    // redrawn after every action: each list keeps the card the user had picked
    const fill = (el, pick) => { const was = el.value; el.innerHTML = opts(pick);
      if (CARDS.some((c) => c.card_id === was)) el.value = was; };
    for (const el of document.querySelectorAll(".cardPick")) fill(el, () => true);
    fill($("repayFrom"), (c) => c.kind !== "credit");
    for (const el of document.querySelectorAll(".debitPick"))
      fill(el, (c) => c.kind !== "credit");
    fill($("repayCard"), (c) => c.kind === "credit");
    const me = await call("GET", "/me");
    showMe(me);
  } catch (e) { $("cards").innerHTML = `<p class="err">${esc(why(e))}</p>`; }
}
// (what an earlier action said is old news once the world is asked again)
$("refresh").addEventListener("click", () => {
  for (const id of ["moveMsg", "rideMsg"]) $(id).textContent = "";
  return Promise.all([loadCards(), loadWallet(), loadTransit()]);
});

$("bindForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const doc = await call("POST", "/cards", {card: $("bindPan").value.trim(),
                                             name: $("bindName").value.trim()});
    $("bindPan").value = "";
    say("bindMsg", "Bound 已绑定 " + masked(doc.card), true);
    await Promise.all([loadCards(), loadStatements()]);
  } catch (e) { say("bindMsg", why(e)); }
});

$("showCode").addEventListener("click", async () => {
  const card = $("codeCard").value;
  if (!card) { say("codeMsg", "Bind a card first 请先绑卡"); return; }
  try {
    const code = await call("POST", "/codes", {card_id: card});
    const res = await fetch(code.png, {headers: {"Authorization": "Bearer " + KEY}});
    if (codeUrl) URL.revokeObjectURL(codeUrl);
    codeUrl = URL.createObjectURL(await res.blob());
    $("qr").src = codeUrl;
    $("qr").classList.remove("spent");
    $("qr").dataset.code = code.id;
    $("codeDigits").textContent = code.code.replace(/(\d{4})(?=\d)/g, "$1 ");
    $("qrbox").classList.remove("hidden");
    $("codeMsg").textContent = "";
    countdown(code.id, code.seconds_left);
  } catch (e) { say("codeMsg", why(e)); }
});

// the code's time left, counted down here from what the server said when it issued it;
// every other second the server is asked whether a merchant has scanned it (used) or the
// sandbox's clock has passed its expiry
function countdown(id, seconds) {
  clearInterval(timer);
  let left = seconds, tick = 0;
  const el = $("countdown");
  const over = (text) => { el.className = "over"; el.textContent = text;
    $("qr").classList.add("spent"); clearInterval(timer); };
  const show = async () => {
    if (left > 0) { el.className = ""; el.textContent =
      `Valid for ${left} s · 有效期 ${left} 秒 · one use 仅可使用一次`; }
    else { over("Expired 已过期 — show a new code"); return; }
    left -= 1;
    if (tick++ % 2) return;
    try {
      const now = await call("GET", "/codes/" + encodeURIComponent(id));
      if ($("qr").dataset.code !== id) return;  // (a newer code is shown)
      if (now.state === "used") {
        el.className = "ok"; el.textContent = "Scanned by the merchant 商户已扫码";
        $("qr").classList.add("spent");
        clearInterval(timer); loadCards();
      } else if (now.state === "expired") over("Expired 已过期 — show a new code");
    } catch (e) { /* the next tick asks again */ }
  };
  show();
  timer = setInterval(show, 1000);
}

$("payForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const scanned = $("merchant").value.trim();
  const body = {card_id: $("payCard").value, amount: $("amount").value.trim()};
  if (scanned.startsWith("qingsuan://")) body.merchant_code = scanned;
  else body.terminal = scanned;
  if ($("payVoucher").value) body.voucher = $("payVoucher").value;
  try {
    const doc = await call("POST", "/payments", body);
    $("voucherMsg").textContent = "";
    say("payMsg", `Paid 支付成功 ${yuan(doc.card_paid)}` + (doc.discount ?
      ` (voucher 优惠 ${yuan(doc.discount)} off ${yuan(doc.price)})` : ""), true);
    await Promise.all([loadCards(), loadVouchers(), loadStatements()]);
  } catch (e) { say("payMsg", why(e)); }
});

const MOVES = {wallet_top_up: "Top-up 充值", wallet_withdrawal: "Withdrawal 提现",
  wallet_transfer: "Transfer 转账", wallet_pay: "Wallet payment 余额支付"};
const MOVE_STATUS = {done: "done 成功", pending: "pending 处理中", failed: "failed 失败",
  refused: "refused 拒绝"};
async function loadWallet() {
  try {
    const doc = await call("GET", "/wallet");
    $("walletBal").textContent = yuan(doc.wallet);
    $("wallet").textContent = yuan(doc.wallet);
    $("moves").innerHTML = doc.moves.slice(0, 5).map((m) => `
      <div class="row move" data-move="${esc(m.id)}"><span>${esc(MOVES[m.do] || m.do)}
        <span class="tag ${esc(m.status)}">${esc(MOVE_STATUS[m.status] || m.status)}</span>
        </span><span class="money ${m.direction === "in" ? "in" : ""}">${m.direction ===
          "in" ? "+" : "−"}${yuan(m.amount)}</span></div>`).join("");
  } catch (e) { say("moveMsg", why(e)); }
}
async function move(path, verb) {
  try {
    const doc = await call("POST", path, {card_id: $("moveCard").value,
                                          amount: $("moveAmount").value.trim()});
    say("moveMsg", `${verb} ${doc.status === "done" ? "成功" : "处理中"} ${yuan(doc.amount)}` +
      ` · wallet 钱包 ${yuan(doc.wallet)}`, true);
    $("moveAmount").value = "";
    await Promise.all([loadWallet(), loadCards()]);
  } catch (e) { say("moveMsg", why(e)); }
}
$("moveForm").addEventListener("submit", (ev) => { ev.preventDefault();
  move("/top-ups", "Top-up 充值"); });
$("withdraw").addEventListener("click", () => move("/withdrawals", "Withdrawal 提现"));

const RIDE_STATUS = {authorised: "waiting for the batch 待扣款", cleared: "paid 已扣款",
  declined: "unpaid 欠费"};
async function loadTransit() {
  try {
    const doc = await call("GET", "/transit");
    $("transitToday").textContent = `Today 今日 ${yuan(doc.today)} of ` +
      `${yuan(doc.daily_limit)} · a ride 单程 ≤ ${yuan(doc.ride_limit)}` +
      (doc.owed !== "0.00" ? ` · owed 欠费 ${yuan(doc.owed)}` : "");
    $("rides").innerHTML = doc.rides.slice(0, 5).map((r) => `
      <div class="ride" data-ride="${esc(r.id)}"><div class="row"><span>${esc(r.gate)} ·
        ${esc(r.at.slice(5, 10))} ${esc(r.at.slice(11, 16))}</span>
        <span class="money">${yuan(r.fare)}</span></div>
        <span class="tag ${esc(r.status)}">${esc(RIDE_STATUS[r.status] || r.status)}</span>
      </div>`).join("");
  } catch (e) { say("rideMsg", why(e)); }
}
$("rideForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const doc = await call("POST", "/transit/rides", {card_id: $("rideCard").value,
      gate: $("gate").value.trim(), amount: $("fare").value.trim()});
    say("rideMsg", `Gate open 闸机已开 · ${yuan(doc.fare)} charged in the next batch`, true);
    await loadTransit();
  } catch (e) { say("rideMsg", why(e)); }
});

async function loadVouchers() {
  try {
    const doc = await call("GET", "/vouchers");
    $("campaigns").innerHTML = doc.campaigns.length ? doc.campaigns.map((c) => `
      <div class="voucher" data-campaign="${esc(c.id)}"><div class="row">
        <span><b>${yuan(c.discount)}</b> off ${yuan(c.threshold)} 满减</span>
        ${c.claimable ? `<button class="small claim" type="button">Claim 领取</button>` :
          '<span class="muted">claimed 已领取</span>'}</div>
        <div class="muted">${esc(c.id)} · valid until 有效期至 ${esc(c.valid_until.slice(0, 10))}
        </div></div>`).join("") : '<p class="muted">No campaign open 暂无活动</p>';
    const mine = doc.vouchers;
    $("myVouchers").innerHTML = mine.length ? '<label>My vouchers 我的券</label>' + mine.map(
      (v) => `<div class="row voucherMine" data-voucher="${esc(v.id)}"><span>${esc(v.campaign)}
        · ${yuan(v.discount)}</span>
        <span class="muted">${esc(STATUS[v.status] || v.status)}</span></div>`).join("")
      : "";
    $("payVoucher").innerHTML = '<option value="">none 不使用</option>' +
      [...new Set(mine.filter((v) => v.status === "claimed").map((v) => v.campaign))]
        .map((c) => `<option value="${esc(c)}">${esc(c)}</option>`).join("");
    for (const btn of document.querySelectorAll("#campaigns .claim"))
      btn.addEventListener("click", () => claim(btn.closest(".voucher").dataset.campaign));
  } catch (e) { say("voucherMsg", why(e)); }
}
async function claim(campaign) {
  try {
    const doc = await call("POST", "/vouchers", {campaign});
    say("voucherMsg", `Claimed 领取成功: ${yuan(doc.discount)} off`, true);
    await loadVouchers();
  } catch (e) { say("voucherMsg", why(e)); }
}

async function loadStatements() {
  try {
    const doc = await call("GET", "/statements");
    $("statements").innerHTML = doc.cards.length ? doc.cards.map((c) => {
      const s = c.statements[c.statements.length - 1];
      return `<div class="statement" data-card="${esc(c.card_id)}">
        <div class="row stmtHead"><b>${esc(c.issuer)} ${esc(masked(c.card))}</b>
          ${s && s.minimum_met ? '<span class="okTag">minimum met 已达最低还款</span>' : ""}
        </div>
        <div class="row"><span>Owed now 当前欠款</span>
          <b class="money owed">${yuan(c.owed)}</b></div>
        ${s ? `<div class="row"><span>Statement 账单</span><span class="money">${yuan(s.owed)}
          </span></div>
        <div class="row"><span>Minimum 最低还款</span><span class="money minimum">
          ${yuan(s.minimum)}</span></div>
        <div class="row"><span>Due 到期还款日</span><span class="due">${esc(s.due.slice(0, 10))}
          </span></div>
        <div class="row"><span>Repaid 已还</span><span class="money repaid">${yuan(s.repaid)}
          </span></div>` : '<div class="muted">No statement yet 暂无账单</div>'}</div>`;
    }).join("") : '<p class="muted">No credit card bound 未绑定信用卡</p>';
  } catch (e) { say("repayMsg", why(e)); }
}

$("repayForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const doc = await call("POST", "/repayments", {card: $("repayCard").value,
      from_card: $("repayFrom").value, amount: $("repayAmount").value.trim()});
    say("repayMsg", `Repaid 还款${doc.status === "done" ? "成功" : "处理中"} ` +
      `${yuan(doc.amount)} · owed now 剩余 ${yuan(doc.owed)}`, true);
    await Promise.all([loadCards(), loadStatements()]);
  } catch (e) { say("repayMsg", why(e)); }
});
</script>
</body>
</html>
"""
