"""The simulation's report (docs/SIMULATE.md, "The report"): one self-contained HTML file,
plots drawn with matplotlib (Agg) and embedded as PNG, a one-line reading under each.

Every figure printed in the report's tables carries the summary.json key it comes from
(``data-key``), so a test can hold the page to the file. The one thing a reader would get
wrong: the plots are drawn from the Parquet tables, the readings and tables from
summary.json; both come from the same run.
"""

from __future__ import annotations

import base64
import html
import io
import shutil
import subprocess
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pyarrow as pa
from matplotlib import font_manager
from matplotlib.figure import Figure

from qingsuan.money import format_fen

#: font families tried first for Chinese labels (then whatever ``fc-list :lang=zh`` finds)
CJK_FAMILIES: Final = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC",
                       "Noto Sans SC", "Source Han Sans SC", "SimHei", "Microsoft YaHei",
                       "PingFang SC")
#: the figures' size in inches and resolution
FIG_SIZE: Final = (9.0, 3.6)
DPI: Final = 100
#: participants shown by name in a per-participant plot (the others are summed)
MAX_BARS: Final = 30
_SYSTEM_COLOURS: Final = {"HVPS": "#1f4e79", "BEPS": "#c55a11", "IBPS": "#548235"}


def cjk_font() -> str | None:
    """A font family that renders Chinese, registered with matplotlib; None if the machine
    has none (the report then falls back to English labels)."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return family
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        found = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True,
                               timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in sorted(found.splitlines()):
        path = line.split(":")[0].strip()
        if not path:
            continue
        try:
            font_manager.fontManager.addfont(path)
            return str(font_manager.FontProperties(fname=path).get_name())
        except (OSError, RuntimeError, ValueError):
            continue
    return None


@dataclass(frozen=True, slots=True)
class Labels:
    """Chinese and English together when a CJK font exists, English alone otherwise."""

    chinese: bool

    def __call__(self, english: str, chinese: str) -> str:
        return f"{english} {chinese}" if self.chinese else english


def short_cny(fen: int) -> str:
    """An amount for a sentence (exact amounts are in the tables and summary.json)."""
    cny = fen / 100
    for unit, size in (("tn", 1e12), ("bn", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(cny) >= size:
            return f"{cny / size:,.2f} {unit} CNY"
    return f"{format_fen(fen)} CNY"


def grouped_cny(fen: int) -> str:
    """An exact amount in CNY with thousands grouped: 1234567890 -> ``12,345,678.90``."""
    text = format_fen(fen)
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    yuan, cents = digits.split(".")
    return f"{sign}{int(yuan):,}.{cents}"


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    # no software or date in the file: the same run draws the same bytes
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight",
                metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _hours(bucket_start: str, first: str) -> float:
    """Hours from the run's first midnight to a bucket's start (both ISO, Beijing time)."""
    import datetime as dt

    return (dt.datetime.fromisoformat(bucket_start)
            - dt.datetime.fromisoformat(first)).total_seconds() / 3600


def _time_axis(ax: Any, days: int) -> None:
    # about ten labels whatever the length: every 3 h of a day, every 12 h or whole days
    step = 3 if days == 1 else max(12, 24 * -(-days // 10))
    ticks = list(range(0, 24 * days + 1, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{h % 24:02d}:00" if days == 1 else f"D{h // 24 + 1} {h % 24:02d}h"
                        for h in ticks], fontsize=8)
    ax.set_xlim(0, 24 * days)
    ax.grid(alpha=0.3)


def _series(rows: list[dict[str, Any]], first: str, value: str,
            key: Callable[[dict[str, Any]], str], reduce: str = "sum",
            grid: Sequence[float] = ()) -> dict[str, dict[float, int]]:
    """Per key, bucket start (hours) -> value; every bucket of ``grid`` present (a bucket
    without a row is a bucket with nothing)."""
    out: dict[str, dict[float, int]] = defaultdict(lambda: dict.fromkeys(grid, 0))
    for r in rows:
        h = _hours(r["bucket_start"], first)
        got = out[key(r)].get(h, 0)
        out[key(r)][h] = got + int(r[value]) if reduce == "sum" else max(got, int(r[value]))
    return out


def _grid(summary: dict[str, Any]) -> list[float]:
    bucket_h = summary["bucket_minutes"] / 60
    return [k * bucket_h for k in range(round(24 * summary["days"] / bucket_h))]


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    png_base64: str
    reading: str


# ---------------------------------------------------------------------- the plots


def settlement_profile(summary: dict[str, Any], flows: list[dict[str, Any]], lab: Labels,
                       bucket_h: float) -> Plot:
    first, days = summary["from"], summary["days"]
    credited = [r for r in flows if r["outcome"] == "credited"]
    series = _series(credited, first, "value_fen", lambda r: str(r["system"]))
    fig, axes = plt.subplots(3, 1, figsize=(FIG_SIZE[0], 6.0), sharex=True)
    peaks = []
    for ax, name in zip(axes, ("HVPS", "BEPS", "IBPS"), strict=True):
        points = sorted(series.get(name, {}).items())
        ax.bar([h + bucket_h / 2 for h, _ in points], [v / 1e10 for _, v in points],
               width=bucket_h * 0.9, color=_SYSTEM_COLOURS[name])
        ax.set_ylabel(f"{name}\n{lab('100M CNY', '亿元')}", fontsize=8)
        _time_axis(ax, days)
        total = sum(v for _, v in points)
        if total:
            top_h, top_v = max(points, key=lambda p: (p[1], -p[0]))
            peaks.append(f"{name} {_clock(top_h)} ({top_v * 100 // total}% of its value)")
    axes[0].set_title(lab("Value settled per bucket", "每时段结算金额"), fontsize=10)
    reading = ("Busiest bucket: " + "; ".join(peaks) + ".") if peaks else "Nothing settled."
    return Plot(lab("Intraday settlement profile", "日内结算分布"), _png(fig), reading)


def _clock(hours: float) -> str:
    day, h = divmod(round(hours * 60), 24 * 60)
    return (f"day {day + 1} " if day else "") + f"{h // 60:02d}:{h % 60:02d}"


def _steps_per_system(series: dict[str, dict[float, int]], days: int, ylabel: str, title: str
                      ) -> Any:
    """One step line per system of amounts in fen over the run, drawn in 100M CNY."""
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    for name, points in sorted(series.items()):
        xs = sorted(points)
        ax.step(xs, [points[x] / 1e10 for x in xs], where="post", label=name,
                color=_SYSTEM_COLOURS.get(name))
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=10)
    _time_axis(ax, days)
    if series:
        ax.legend(fontsize=8)
    return fig


def queues_over_day(summary: dict[str, Any], queues: list[dict[str, Any]], lab: Labels
                    ) -> Plot:
    first, days = summary["from"], summary["days"]
    series = _series(queues, first, "end_value_fen", lambda r: str(r["system"]),
                     grid=_grid(summary))
    fig = _steps_per_system(series, days, lab("100M CNY waiting", "排队金额 亿元"),
                            lab("Value waiting in queues (end of each bucket)", "排队金额"))
    hv = summary["systems"]["HVPS"]
    reading = (f"HVPS: at most {short_cny(hv['peak_queue_value_fen'])} waited at once; "
               f"{hv['delayed_items']:,} payments settled late, value-weighted queue time "
               f"{hv['queue_time_s']:,.1f} s"
               f"; {hv['outcomes'].get('not_settled', {}).get('items', 0):,} not settled"
               + (f"; gridlock resolution settled {hv['lsm_share_ppm'] / 1e4:.1f}% of the "
                  "value credited" if hv.get("lsm_share_ppm") else "") + ".")
    return Plot(lab("Queues over the day", "日内排队"), _png(fig), reading)


def liquidity_per_participant(summary: dict[str, Any], lab: Labels) -> Plot:
    metrics = summary["participant_metrics"]
    names = list(metrics)[:MAX_BARS]
    used = [metrics[n]["peak_liquidity_used_fen"] / 1e10 for n in names]
    avail = [metrics[n]["available_at_peak_fen"] / 1e10 for n in names]
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], avail, width=0.4, color="#bfbfbf",
           label=lab("available (balance + credit)", "可用 (余额+授信)"))
    ax.bar([x + 0.2 for x in xs], used, width=0.4, color="#1f4e79",
           label=lab("peak used", "最高占用"))
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=45 if len(names) > 10 else 0, fontsize=8)
    ax.set_ylabel(lab("100M CNY", "亿元"), fontsize=8)
    ax.set_title(lab("Liquidity used per participant", "各参与者流动性占用"), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    if metrics:
        top = max(metrics, key=lambda n: (metrics[n]["peak_liquidity_used_ppm"], n))
        m = metrics[top]
        reading = (f"{top} came closest to its limit: it used "
                   f"{short_cny(m['peak_liquidity_used_fen'])} of "
                   f"{short_cny(m['available_at_peak_fen'])} "
                   f"({m['peak_liquidity_used_ppm'] / 10_000:.1f}%).")
    else:
        reading = "No participant."
    return Plot(lab("Liquidity used per participant", "流动性占用"), _png(fig), reading)


def funds_in_transit(summary: dict[str, Any], transit: list[dict[str, Any]], lab: Labels
                     ) -> Plot:
    first, days = summary["from"], summary["days"]
    series = _series(transit, first, "peak_fen", lambda r: str(r["system"]), "max",
                     grid=_grid(summary))
    fig = _steps_per_system(series, days, lab("100M CNY", "亿元"),
                            lab("Funds in transit: netted, not yet settled in HVPS", "在途资金"))
    parts = [f"{n} up to {short_cny(summary['systems'][n]['peak_in_transit_fen'])}"
             for n in ("BEPS", "IBPS")]
    settled = sum(x["status"] == "settled" for v in summary["net_sessions"].values()
                  for x in v)
    reading = ("Netted but not yet settled: " + ", ".join(parts) + "; "
               + (f"{settled} settlement sessions in HVPS brought it back to zero."
                  if settled else "no session settled it (HVPS closed)."))
    return Plot(lab("Funds in transit", "在途资金"), _png(fig), reading)


def app_payments(summary: dict[str, Any], rows: list[dict[str, Any]], lab: Labels,
                 bucket_h: float) -> Plot | None:
    """The app's payments per bucket of arrival: approved, and declined or refused."""
    if "app" not in summary:
        return None
    payments = [r for r in rows if r["kind"].startswith(("qr_pay", "wallet_pay"))]
    series = _series(payments, summary["from"], "items",
                     lambda r: "done" if r["status"] == "done" else "not",
                     grid=_grid(summary))
    fig, done = _approved_bars(summary, series, lab, bucket_h, 1, lab("payments", "笔数"),
                               lab("App payments per bucket (QR both ways, wallet)",
                                   "云闪付 每时段支付笔数"))
    pay = summary["app"]["payments"]
    top = max(done, key=lambda p: (p[1], -p[0]), default=None)
    reading = (f"{pay['approved_items']:,} of {pay['items']:,} payments approved"
               + (f"; the busiest bucket starts at {_clock(top[0])} ({top[1]:,} approved)"
                  if top else "") + ".")
    return Plot(lab("App payments over the day", "云闪付支付"), _png(fig), reading)


def card_purchases(summary: dict[str, Any], rows: list[dict[str, Any]], lab: Labels,
                   bucket_h: float) -> Plot | None:
    """Card traffic's value per bucket of arrival: approved, and declined (cards.parquet,
    the issuers' rows)."""
    if "cards" not in summary:
        return None
    issued = [r for r in rows if r["role"] == "issuer"]
    series = _series(issued, summary["from"], "value_fen",
                     lambda r: "done" if r["response_code"] == "00" else "not",
                     grid=_grid(summary))
    fig, done = _approved_bars(summary, series, lab, bucket_h, 1e10,
                               lab("100M CNY", "亿元"),
                               lab("Card purchases per bucket", "银行卡 每时段消费金额"))
    cards = summary["cards"]
    top = max(done, key=lambda p: (p[1], -p[0]), default=None)
    total = cards["generated_value_fen"]
    reading = (f"{cards['approved_value_fen'] * 100 // max(total, 1)}% of the value "
               f"generated was approved" + (
                   f"; the busiest bucket starts at {_clock(top[0])} "
                   f"({top[1] * 100 // max(cards['approved_value_fen'], 1)}% of it)"
                   if top and top[1] else "") + ".")
    return Plot(lab("Card purchases over the day", "银行卡消费"), _png(fig), reading)


def _approved_bars(summary: dict[str, Any], series: dict[str, dict[float, int]], lab: Labels,
                   bucket_h: float, unit: float, ylabel: str, title: str
                   ) -> tuple[Figure, list[tuple[float, int]]]:
    """Bars per bucket: ``series["done"]`` in green, ``series["not"]`` on top in red
    (values divided by ``unit``); the figure and the approved points."""
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    done = sorted(series["done"].items())
    nots = series["not"]
    xs = [h + bucket_h / 2 for h, _ in done]
    ax.bar(xs, [v / unit for _, v in done], width=bucket_h * 0.9, color="#2e7d32",
           label=lab("approved", "成功"))
    ax.bar(xs, [nots.get(h, 0) / unit for h, _ in done], width=bucket_h * 0.9,
           bottom=[v / unit for _, v in done], color="#c62828", label=lab("declined", "失败"))
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=10)
    _time_axis(ax, summary["days"])
    ax.legend(fontsize=8)
    return fig, done


def costs_per_bank(summary: dict[str, Any], lab: Labels) -> Plot | None:
    costs = summary.get("costs")
    if not costs:
        return None
    names = list(costs["banks"])[:MAX_BARS]
    parts = (("liquidity_fen", "#1f4e79", lab("intraday liquidity", "日间流动性")),
             ("delay_fen", "#c55a11", lab("delay", "延迟")),
             ("end_of_day_fen", "#7f7f7f", lab("end-of-day penalty", "日终罚金")),
             ("overnight_fen", "#548235", lab("overnight credit", "隔夜融资")))
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    bottom = [0.0] * len(names)
    for key, colour, label in parts:
        values = [costs["banks"][n][key] / 100 for n in names]
        ax.bar(names, values, bottom=bottom, color=colour, label=label)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("CNY", fontsize=8)
    ax.set_title(lab("Costs per bank", "各银行成本"), fontsize=10)
    ax.tick_params(axis="x", labelsize=8, rotation=45 if len(names) > 10 else 0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    banks = costs["banks"]
    top = max(banks, key=lambda n: (banks[n]["total_fen"], n))
    reading = (f"All banks together: {short_cny(costs['total_fen'])}; the highest, {top}, "
               f"{short_cny(banks[top]['total_fen'])}.")
    return Plot(lab("Costs per bank", "成本"), _png(fig), reading)


_REGIME_LABELS: Final = {"draft_houses": ("draft houses", "票号"),
                         "correspondent": ("correspondent banks", "同业头寸"),
                         "hub_post": ("hub by post", "手工联行"),
                         "hub_wire": ("EIS wire hub", "电子联行"),
                         "cnaps": ("CNAPS", "现代化支付系统")}


def regime_comparison(summary: dict[str, Any], lab: Labels) -> Plot | None:
    regimes = summary.get("regimes")
    if not regimes:
        return None
    names = [n for n in _REGIME_LABELS if n in regimes]
    labels = [lab(*_REGIME_LABELS[n]) for n in names]
    panels = (("liquidity_fen", 1e10, lab("liquidity needed", "所需流动性") + "\n100M CNY"),
              ("in_transit_fen", 1e10, lab("in transit on average", "平均在途资金")
               + "\n100M CNY"),
              ("delay_s", 3600.0, lab("delay (value-weighted)", "延迟") + "\nhours"))
    fig, axes = plt.subplots(1, 3, figsize=(FIG_SIZE[0] + 1.5, 3.2), sharey=True)
    for ax, (key, unit, title) in zip(axes, panels, strict=True):
        ax.barh(labels, [regimes[n][key] / unit for n in names],
                color=["#7f7f7f", "#bf9000", "#c55a11", "#548235", "#1f4e79"][:len(names)])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, axis="x")
    axes[0].invert_yaxis()
    c, corr = regimes["cnaps"], regimes["correspondent"]
    ratio = corr["liquidity_fen"] / c["liquidity_fen"] if c["liquidity_fen"] else 0.0
    post = short_cny(regimes["hub_post"]["in_transit_fen"])
    reading = (f"On the same payments, correspondent banking needs {ratio:.1f} times the "
               f"liquidity CNAPS used ({corr['accounts']:,} accounts); the hubs need only "
               f"the net debits but leave {post} in transit by post; drafts take "
               f"{regimes['parameters']['draft_days']} days.")
    return Plot(lab("Historical regimes", "历代清算方式"), _png(fig), reading)


def _regime_table(summary: dict[str, Any]) -> str:
    regimes = summary.get("regimes")
    if not regimes:
        return ""
    head = ("<tr><th>regime</th><th>liquidity needed CNY</th><th>in transit CNY</th>"
            "<th>delay s</th><th>cost CNY</th><th>accounts</th></tr>")
    rows = []
    for name, (english, chinese) in _REGIME_LABELS.items():
        if name not in regimes:
            continue
        k = f"regimes.{name}"
        rows.append("<tr>" + f"<td>{html.escape(english)} {chinese}</td>" + "".join([
            _cell(summary, f"{k}.liquidity_fen"), _cell(summary, f"{k}.in_transit_fen"),
            _cell(summary, f"{k}.delay_s", "float"), _cell(summary, f"{k}.cost_fen"),
            _cell(summary, f"{k}.accounts", "int")]) + "</tr>")
    return ("<h2>Historical regimes on the same payments</h2><table>" + head
            + "".join(rows) + "</table>")


# ---------------------------------------------------------------------- the page


def _cell(summary: dict[str, Any], key: str, kind: str = "fen") -> str:
    """A figure of summary.json, printed with its key (held to the file by the tests)."""
    value: Any = summary
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    text = (grouped_cny(int(value)) if kind == "fen" else f"{value:,}" if kind == "int"
            else f"{value}")
    return f'<td data-key="{html.escape(key)}" data-kind="{kind}">{html.escape(text)}</td>'


def _system_table(summary: dict[str, Any]) -> str:
    head = ("<tr><th>system</th><th>generated</th><th>credited</th><th>credited CNY</th>"
            "<th>not settled</th><th>no funds</th><th>over cap</th>"
            "<th>queue time s</th><th>settled late</th></tr>")
    rows = []
    for name, s in summary["systems"].items():
        cells = [f"<td>{name}</td>",
                 _cell(summary, f"systems.{name}.generated_items", "int")]
        for outcome in ("credited",):
            cells.append(_cell(summary, f"systems.{name}.outcomes.{outcome}.items", "int")
                         if outcome in s["outcomes"] else "<td>0</td>")
        cells.append(_cell(summary, f"systems.{name}.credited_value_fen"))
        for outcome in ("not_settled", "no_funds", "over_cap"):
            cells.append(_cell(summary, f"systems.{name}.outcomes.{outcome}.items", "int")
                         if outcome in s["outcomes"] else "<td>0</td>")
        cells.append(_cell(summary, f"systems.{name}.queue_time_s", "float"))
        cells.append(_cell(summary, f"systems.{name}.delayed_items", "int"))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _lsm_table(summary: dict[str, Any]) -> str:
    """What HVPS's gridlock resolution settled, by step (docs/GRIDLOCK.md)."""
    hv = summary["systems"]["HVPS"]
    if "lsm" not in hv:
        return ""
    rows = "".join(
        f"<tr><td>{step} offsetting</td>"
        f"{_cell(summary, f'systems.HVPS.lsm.{step}.items', 'int')}"
        f"{_cell(summary, f'systems.HVPS.lsm.{step}.value_fen')}</tr>" for step in hv["lsm"])
    return ("<table><tr><th>HVPS gridlock resolution</th><th>payments</th><th>CNY</th></tr>"
            f"{rows}<tr><td>share of HVPS value credited, ppm</td><td></td>"
            f"{_cell(summary, 'systems.HVPS.lsm_share_ppm', 'int')}</tr></table>")


def _payroll_table(summary: dict[str, Any]) -> str:
    """The payroll days' BEPS credits (in BEPS's figures above), when the file has them."""
    if "payroll" not in summary:
        return ""
    days = ", ".join(str(d) for d in summary["payroll"]["days"])
    return ("<table><tr><th>payroll credits (BEPS)</th><th>salary mean CNY</th>"
            f"<th>days of the month</th></tr><tr>"
            f"{_cell(summary, 'payroll.generated_items', 'int')}"
            f"{_cell(summary, 'payroll.mean_fen')}<td>{html.escape(days)}</td></tr></table>")


def _participant_table(summary: dict[str, Any]) -> str:
    head = ("<tr><th>participant</th><th>peak liquidity used CNY</th><th>available CNY</th>"
            "<th>used ppm</th><th>peak credit drawn CNY</th></tr>")
    rows = []
    for name in summary["participant_metrics"]:
        k = f"participant_metrics.{name}"
        rows.append("<tr>" + "".join([
            f"<td>{html.escape(name)}</td>",
            _cell(summary, f"{k}.peak_liquidity_used_fen"),
            _cell(summary, f"{k}.available_at_peak_fen"),
            _cell(summary, f"{k}.peak_liquidity_used_ppm", "int"),
            _cell(summary, f"{k}.peak_credit_drawn_fen")]) + "</tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _app_table(summary: dict[str, Any]) -> str:
    """The app's payments and the voucher campaign (消费券), when the file has an app:."""
    if "app" not in summary:
        return ""
    a = summary["app"]
    declines = ", ".join(f"{k} {v:,}" for k, v in a["payments"]["declines"].items())
    rows = ("<table><tr><th>app 云闪付</th><th>payments 支付</th><th>value CNY</th>"
            "<th>approved 成功</th><th>approved CNY</th><th>declined by reason</th>"
            "<th>cards bound 绑卡</th></tr><tr><td>QR and wallet</td>"
            + _cell(summary, "app.payments.items", "int")
            + _cell(summary, "app.payments.value_fen")
            + _cell(summary, "app.payments.approved_items", "int")
            + _cell(summary, "app.payments.approved_value_fen")
            + f"<td>{html.escape(declines or 'none')}</td>"
            + _cell(summary, "app.cards_bound", "int") + "</tr></table>")
    keys = [("top-ups 充值", "wallet_top_up"), ("withdrawals 提现", "wallet_withdrawal"),
            ("repayments 还款", "card_repayment")]
    rows += ("<table><tr><th>event</th><th>items</th><th>done</th><th>done CNY</th></tr>"
             + "".join(f"<tr><td>{label}</td>"
                       + _cell(summary, f"app.events.{k}.items", "int")
                       + _cell(summary, f"app.events.{k}.done_items", "int")
                       + _cell(summary, f"app.events.{k}.done_value_fen") + "</tr>"
                       for label, k in keys if k in a["events"]) + "</table>")
    if "campaign" in a:
        c = "app.campaign"
        rows += ("<table><tr><th>campaign 消费券</th><th>budget CNY</th><th>claimed 领取</th>"
                 "<th>used 使用</th><th>voucher value CNY</th><th>spend driven CNY</th>"
                 "<th>leverage 撬动</th><th>budget left CNY</th><th>fund left CNY</th></tr>"
                 f"<tr><td>{html.escape(a['campaign']['id'])}</td>"
                 + _cell(summary, f"{c}.budget_fen") + _cell(summary, f"{c}.claimed", "int")
                 + _cell(summary, f"{c}.used", "int")
                 + _cell(summary, f"{c}.voucher_value_fen")
                 + _cell(summary, f"{c}.spend_driven_fen")
                 + _cell(summary, f"{c}.leverage", "float")
                 + _cell(summary, f"{c}.budget_left_fen")
                 + _cell(summary, f"{c}.fund_left_fen") + "</tr></table>")
    return "<h2>The app and its voucher campaign 云闪付与消费券</h2>" + rows


def _card_table(summary: dict[str, Any], top: int = 20) -> str:
    """Card traffic (a ``cards`` system): the outcomes, then the participants that
    acquired the most (at most ``top``) with their fees from the closed clearing days."""
    if "cards" not in summary:
        return ""
    c = summary["cards"]
    head = ("<table><tr><th>card purchases 银行卡</th><th>generated</th><th>CNY</th>"
            "<th>approved 成功</th><th>approved CNY</th><th>no funds 51</th>"
            "<th>clearing days closed</th></tr><tr><td>interbank</td>"
            + _cell(summary, "cards.generated_items", "int")
            + _cell(summary, "cards.generated_value_fen")
            + (_cell(summary, "cards.outcomes.approved.items", "int")
               if "approved" in c["outcomes"] else "<td>0</td>")
            + _cell(summary, "cards.approved_value_fen")
            + (_cell(summary, "cards.outcomes.no_funds.items", "int")
               if "no_funds" in c["outcomes"] else "<td>0</td>")
            + f"<td>{len(c['clearing_days'])}</td></tr></table>")
    people = c["participants"]
    ranked = sorted((n for n in people if "acquirer" in people[n]),
                    key=lambda n: -people[n]["acquirer"]["approved_value_fen"])[:top]
    rows = []
    for name in ranked + (["CUPS"] if "CUPS" in people else []):
        k = f"cards.participants.{name}"
        p = people[name]
        cells = [f"<td>{html.escape(name)}</td>"]
        for role in ("acquirer", "issuer"):
            cells.append(_cell(summary, f"{k}.{role}.approved_value_fen") if role in p
                         else "<td></td>")
        for key in ("fees_received_fen", "fees_paid_fen", "mdr_fen", "position_fen"):
            cells.append(_cell(summary, f"{k}.cleared.{key}")
                         if key in p.get("cleared", {}) else "<td></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = len(people) - len(rows)
    note = (f"<p>The {top} participants that acquired the most, and the switch; "
            f"{more:,} more in summary.json.</p>" if more > 0 else "")
    return (f"<h2>Card traffic 银行卡跨行交易</h2>{head}<table><tr><th>participant</th>"
            "<th>acquired CNY</th><th>issued CNY</th><th>fees received CNY</th>"
            "<th>fees paid CNY</th><th>MDR CNY</th><th>clearing position CNY</th></tr>"
            + "".join(rows) + f"</table>{note}")


def _cost_table(summary: dict[str, Any]) -> str:
    costs = summary.get("costs")
    if not costs:
        return ""
    keys = ("liquidity_fen", "delay_fen", "end_of_day_fen", "overnight_fen", "total_fen")
    head = "<tr><th>bank</th>" + "".join(f"<th>{k[:-4].replace('_', ' ')} CNY</th>"
                                          for k in keys) + "</tr>"
    rows = ["<tr>" + f"<td>{html.escape(n)}</td>"
            + "".join(_cell(summary, f"costs.banks.{n}.{k}") for k in keys) + "</tr>"
            for n in costs["banks"]]
    return "<h2>Costs per bank</h2><table>" + head + "".join(rows) + "</table>"


_STYLE: Final = """
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 2em 0; }
figcaption { font-style: italic; margin-top: 0.3em; }
img { max-width: 100%; }
.warning { color: #a00; }
"""


def render(summary: dict[str, Any], tables: dict[str, pa.Table],
           extra: Sequence[Plot] = ()) -> str:
    """The report as one HTML page (plots embedded)."""
    family = cjk_font()
    lab = Labels(family is not None)
    notes = []
    if family is None:
        warnings.warn("no font for Chinese found (fc-list :lang=zh): the report's plots "
                      "have English labels only", stacklevel=2)
        notes.append('<p class="warning">No font for Chinese was found on this machine: '
                     "the plots have English labels only.</p>")
    bucket_h = summary["bucket_minutes"] / 60
    with plt.rc_context({"font.family": "sans-serif",
                         "font.sans-serif": [family, "DejaVu Sans"] if family
                         else ["DejaVu Sans"],
                         "axes.unicode_minus": False, "svg.hashsalt": "qingsuan"}):
        plots = [
            settlement_profile(summary, tables["flows"].to_pylist(), lab, bucket_h),
            queues_over_day(summary, tables["queues"].to_pylist(), lab),
            liquidity_per_participant(summary, lab),
            funds_in_transit(summary, tables["transit"].to_pylist(), lab),
        ]
        for extra_plot in (costs_per_bank(summary, lab), regime_comparison(summary, lab),
                           app_payments(summary, tables["app"].to_pylist()
                                        if "app" in tables else [], lab, bucket_h),
                           card_purchases(summary, tables["cards"].to_pylist()
                                          if "cards" in tables else [], lab, bucket_h)):
            if extra_plot is not None:
                plots.append(extra_plot)
    plots.extend(extra)
    checks = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in summary["checks"].items())
    title = (f"{summary['scenario']}: {summary['days']} day(s) from {summary['from'][:10]}, "
             f"scale {summary['scale']:g}, seed {summary['seed']}")
    figures = "".join(
        f'<figure><h2>{html.escape(p.title)}</h2>'
        f'<img alt="{html.escape(p.title)}" src="data:image/png;base64,{p.png_base64}">'
        f"<figcaption>{html.escape(p.reading)}</figcaption></figure>" for p in plots)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(notes)}"
        f"<p>From {html.escape(summary['from'])} to {html.escape(summary['to'])}; "
        f"{summary['participants']} participants, {summary['customers']:,} customers. "
        f"Checks: {html.escape(checks)}. Amounts in CNY; exact figures in fen are in "
        "summary.json and the Parquet files beside this page.</p>"
        f"<h2>Systems</h2>{_system_table(summary)}{_lsm_table(summary)}"
        f"{_payroll_table(summary)}"
        f"<h2>Participants</h2>{_participant_table(summary)}{_cost_table(summary)}"
        f"{_app_table(summary)}{_card_table(summary)}"
        f"{_regime_table(summary)}"
        f"{figures}</body></html>\n")


# ---------------------------------------------------------------------- a sweep


def setting(value: Any) -> str:
    """A swept setting's value as printed: a number (0.05) or a name (multilateral)."""
    return value if isinstance(value, str) else f"{value:g}"


def liquidity_delay_curve(doc: dict[str, Any], lab: Labels) -> Plot:
    """HVPS's delay index (value-weighted wait, the unsettled counted until they were
    given back) against the first swept setting, a line per value of the second (the
    classic trade-off: less liquidity, more delay; gridlock resolution shifts it)."""
    axes = [a["name"] for a in doc["axes"]]
    x_name = axes[0]
    lines: dict[Any, list[tuple[Any, float]]] = defaultdict(list)
    for p in doc["points"]:
        key = p[axes[1]] if len(axes) > 1 else None
        lines[key].append((p[x_name], p["hvps_delay_index_s"]))
    fig, ax = plt.subplots(figsize=FIG_SIZE)
    for key, points in lines.items():
        if not any(isinstance(x, str) for x, _ in points):
            points.sort()  # numbers in order; names as the sweep listed them
        ax.plot([setting(x) if isinstance(x, str) else x for x, _ in points],
                [y for _, y in points], marker="o",
                label=f"{axes[1]} {setting(key)}" if key is not None else None)
    ax.set_xlabel(lab(x_name, {"liquidity": "流动性", "buffer": "缓冲",
                               "lsm": "排队撮合"}.get(x_name, "")), fontsize=8)
    ax.set_ylabel(lab("HVPS delay s (value-weighted)", "大额延迟 秒"), fontsize=8)
    ax.set_title(lab("Liquidity-delay trade-off", "流动性与延迟"), fontsize=10)
    ax.grid(alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize=8)
    parts = []
    for key, points in lines.items():
        (x0, y0), (x1, y1) = points[0], points[-1]
        parts.append((f"{axes[1]} {setting(key)}: " if key is not None else "")
                     + f"{y0:,.1f} s at {x_name} {setting(x0)}, {y1:,.1f} s at "
                       f"{setting(x1)}")
    reading = ("HVPS's delay (value-weighted wait, unsettled payments counted until the "
               "cut-off): " + "; ".join(parts) + ".")
    return Plot(lab("Liquidity-delay curve", "流动性-延迟曲线"), _png(fig), reading)


def render_sweep(doc: dict[str, Any]) -> str:
    """A sweep's report (``doc``: what sweep.json holds)."""
    family = cjk_font()
    if family is None:
        warnings.warn("no font for Chinese found (fc-list :lang=zh): the report's plots "
                      "have English labels only", stacklevel=2)
    with plt.rc_context({"font.family": "sans-serif",
                         "font.sans-serif": [family, "DejaVu Sans"] if family
                         else ["DejaVu Sans"], "axes.unicode_minus": False}):
        plot = liquidity_delay_curve(doc, Labels(family is not None))
    axes = [a["name"] for a in doc["axes"]]
    fields = ("hvps_delay_index_s", "hvps_queue_time_s", "hvps_delayed_value_fen",
              "hvps_not_settled_value_fen", "hvps_lsm_bilateral_value_fen",
              "hvps_lsm_multilateral_value_fen", "liquidity_used_fen", "costs_fen")
    head = "<tr>" + "".join(f"<th>{html.escape(n)}</th>" for n in (*axes, *fields)) + "</tr>"
    rows = []
    for k in range(len(doc["points"])):
        cells = [_cell(doc, f"points.{k}.{a}", "text" if isinstance(
            doc["points"][k][a], str) else "float") for a in axes]
        cells += [_cell(doc, f"points.{k}.{f}", "float" if f.endswith("_s") else "fen")
                  for f in fields]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    title = (f"{doc['scenario']}: sweep of {', '.join(axes)}, {doc['days']} day(s), "
             f"scale {doc['scale']:g}, seed {doc['seed']}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Each point is a whole simulation of the same "
        "traffic. Amounts in CNY; exact figures are in sweep.json and sweep.parquet.</p>"
        f'<figure><h2>{html.escape(plot.title)}</h2>'
        f'<img alt="{html.escape(plot.title)}" src="data:image/png;base64,{plot.png_base64}">'
        f"<figcaption>{html.escape(plot.reading)}</figcaption></figure>"
        f"<h2>Points</h2><table>{head}{''.join(rows)}</table></body></html>\n")
