"""Tell a scenario's run as a story: each step, in words, with every ledger posting."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from rich.console import Console

from qingsuan.calendar import HvpsPhase
from qingsuan.clock import format_time, from_datetime, to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.sim.runner import PaymentRecord, Posting, Runner, StepHook
from qingsuan.sim.scenario import Event
from qingsuan.wallets.events import WALLET_EVENTS

_NOTICE_WORDS = {
    "queued": "HVPS queues {ref}: {detail}",
    "released": "HVPS releases {ref} from {who}'s queue ({detail})",
    "settled": "HVPS settles {ref}: central-bank money moves from {who}'s settlement account",
    "credited": "{who}'s settlement account is credited for {ref}",
    "cancelled": "{who} cancels {ref} (撤销): it leaves the queue, nothing moved",
    "returned": "HVPS returns {ref}: {detail}",
    "rejected": "HVPS rejects {ref}: {detail}",
    "reprioritised": "{who} moves {ref} to level {detail}",
    "pledged": "{who} pledges collateral worth {detail}",
    "released_collateral": "{who} takes back collateral worth {detail}",
    "credit_drawn": "{who} is short: automatic pledge financing (自动质押融资) lends {detail}",
    "overnight_credit": "{who} could not repay its intraday credit: overnight credit {detail}",
    "BEPS:netted": "BEPS nets {ref} into {who}'s net position (净额): the payee can be "
                   "credited now, central-bank money moves at the next session",
    "IBPS:netted": "IBPS: the receiving bank accepted {ref} in real time; it is netted into "
                   "{who}'s position",
    "BEPS:queued": "BEPS queues {ref}: it would take {who} past its net debit cap ({detail})",
    "BEPS:released": "BEPS releases {ref}: {who}'s position has room again",
    "BEPS:rejected": "BEPS rejects {ref}: {detail}",
    "IBPS:rejected": "IBPS rejects {ref}: {detail}",
    "BEPS:cancelled": "{who} cancels its queued item {ref}",
    "BEPS:returned": "{ref} comes back to {who} (退汇): {detail}",
    "BEPS:settled": "BEPS session {detail}: {ref} is settled in central-bank money",
    "IBPS:settled": "IBPS session {detail}: {ref} is settled in central-bank money",
}


def narrator(out: Console, *, step: bool = False,
             wait: Callable[[str], object] = input) -> StepHook:
    """A step hook for :func:`qingsuan.sim.runner.run_scenario` that prints the story."""

    def narrate(event: Event, postings: list[Posting], runner: Runner) -> None:
        out.print()
        when = format_time(event.at_us)[11:16]
        day = format_time(event.at_us)[:10]
        f = event.fields
        if event.do == "transfer":
            rec = runner.payments[f["id"]]
            payer = runner.scenario.customer(f["from_customer"])
            if f.get("to_customer") is not None:
                payee = runner.scenario.customer(f["to_customer"])
                to_name, to_bank = payee.id, payee.bank
            else:  # an account that is not listed (it may not exist)
                to_bank, account, _ = f["to_account"]
                to_name = f"account {account}"
            urgent = " urgent" if f["urgent"] else ""
            out.print(f"[bold]{day} {when}[/] {payer.id} ({payer.bank}) pays {to_name} "
                      f"({to_bank}) {format_fen(f['amount_fen'])} CNY "
                      f"{'at the counter' if f['channel'] == 'counter' else 'on mobile banking'}"
                      f"{urgent}: {runner.routes.get(f['id'], '')}.")
            if rec.held_until is not None:
                out.print(f"  {payer.bank} holds it, the funds reserved, until HVPS opens "
                          f"at {rec.held_until[:16].replace('T', ' ')}")
            if rec.reason is not None and rec.status == "rejected" and \
                    not runner.step_notices:
                out.print(f"  [red]rejected[/] {rec.reason['code']}: {rec.reason['message']}"
                          " - nothing was booked")
        elif event.do == "hvps_payment":
            rec = runner.payments[f["id"]]
            kind = "hvps.111 customer transfer" if f["payer"][0] == "customer" else \
                "hvps.112 institution transfer"
            out.print(f"[bold]{day} {when}[/] {f['payer'][1]} ({f['sender']}) pays "
                      f"{f['payee'][1]} ({f['receiver']}) {format_fen(f['amount_fen'])} CNY, "
                      f"priority {f['priority']}: {f['sender']} reserves the funds and sends "
                      f"a {kind} to HVPS, the central bank's real-time gross settlement.")
            if rec.status == "rejected" and rec.reason is not None and \
                    not runner.step_notices:
                out.print(f"  [red]refused by {f['sender']}[/] {rec.reason['code']}: "
                          f"{rec.reason['message']}")
        elif event.do in ("beps_payment", "ibps_payment"):
            rec = runner.payments[f["id"]]
            system = f["system"]
            what = f["kind"].replace("_", " ") if system == "BEPS" else "real-time credit"
            out.print(f"[bold]{day} {when}[/] {f['payer'][3] or f['payer'][2]} "
                      f"({f['payer'][1]}) pays {f['payee'][3] or f['payee'][2]} "
                      f"({f['payee'][1]}) {format_fen(f['amount_fen'])} CNY by {system} "
                      f"({what}): deferred net settlement, 7x24.")
            if rec.status == "rejected" and rec.reason is not None and \
                    not runner.step_notices:
                out.print(f"  [red]refused by the bank[/] {rec.reason['code']}: "
                          f"{rec.reason['message']}")
        elif event.do == "debit_agreement":
            out.print(f"[bold]{day} {when}[/] the payer signs a debit agreement "
                      f"(授权协议) {f['payer']} -> {f['payee']}: periodic debits may now "
                      "collect from it")
        elif event.do == "ibps_account_inquiry":
            answer = runner.inquiries.get(f["id"], {})
            out.print(f"[bold]{day} {when}[/] {f['asker']} asks IBPS whether {f['bank']} has "
                      f"account {f['account']}: exists {answer.get('exists')}, name matches "
                      f"{answer.get('name_matches')}")
        elif event.do in ("atm_withdrawal", "pos_purchase", "atm_balance_inquiry"):
            card_rec = runner.payments.get(f["id"])
            what = {"atm_withdrawal": "withdraws", "pos_purchase": "pays",
                    "atm_balance_inquiry": "asks the balance"}[event.do]
            amount = f" {format_fen(f['amount_fen'])} CNY" if f["amount_fen"] else ""
            out.print(f"[bold]{day} {when}[/] card {f['card'][:6]}...{f['card'][-4:]} "
                      f"{what}{amount} at terminal {f['terminal']}: the acquirer sends an ISO "
                      "8583 request through the card switch to the issuer")
            if card_rec is not None:
                if card_rec.stand_in:
                    out.print("  the issuer is down: the switch approves it on the issuer's "
                              "behalf (stand-in, 代授权); the issuer books it when it is back")
                else:
                    out.print(f"  the issuer answers: {_verdict(card_rec)}")
            elif f["id"] in runner.inquiries:
                answer = runner.inquiries[f["id"]]
                out.print(f"  the issuer answers {answer['response_code']}: balance "
                          f"{answer.get('balance')}")
        elif event.do in ("pos_refund", "pos_void"):
            card_rec = runner.payments.get(f["id"])
            if event.do == "pos_refund":
                out.print(f"[bold]{day} {when}[/] the merchant refunds (退货) "
                          f"{format_fen(f['amount_fen'])} CNY of {f['target']}: a new card "
                          "transaction with the flows reversed (0220)")
            else:
                out.print(f"[bold]{day} {when}[/] the merchant voids (撤销) {f['target']} the "
                          "same day: the switch undoes it in both banks' books")
            if card_rec is not None:
                out.print(f"  the switch answers: {_verdict(card_rec)}")
        elif event.do in ("preauth", "preauth_cancel", "preauth_completion"):
            card_rec = runner.payments.get(f["id"])
            if event.do == "preauth":
                out.print(f"[bold]{day} {when}[/] card {f['card'][:6]}...{f['card'][-4:]} is "
                          f"pre-authorised (预授权) for {format_fen(f['amount_fen'])} CNY at "
                          f"terminal {f['terminal']}: the issuer holds the amount for "
                          f"{runner.params['cards.preauth_days']} days (0100)")
            elif event.do == "preauth_cancel":
                out.print(f"[bold]{day} {when}[/] the merchant cancels (预授权撤销) "
                          f"{f['target']}: the issuer releases the hold (0100)")
            else:
                out.print(f"[bold]{day} {when}[/] the merchant completes (预授权完成) "
                          f"{f['target']} for {format_fen(f['amount_fen'])} CNY: the issuer "
                          "posts the hold, and the completion clears like a purchase")
            if card_rec is not None:
                out.print(f"  the switch answers: {_verdict(card_rec)}")
        elif event.do == "dispute":
            rec = runner.payments[f["id"]]
            words = {"credit_adjustment": "the acquirer gives the cardholder back (贷记调整)",
                     "first_chargeback": "the issuer charges back (第一次退单)",
                     "representment": "the acquirer re-presents it (再请款)",
                     "second_chargeback": "the issuer charges back again (第二次退单)"}
            out.print(f"[bold]{day} {when}[/] dispute of {f['target']}: {words[f['kind']]} "
                      f"{format_fen(f['amount_fen'])} CNY")
            if rec.status == "refused" and rec.reason is not None:
                out.print(f"  [red]refused by the switch[/] ({rec.reason['code']}): "
                          f"{rec.reason['message']}")
            else:
                out.print("  accepted: an item of this clearing day between the two banks")
        elif event.do == "fault":
            timeout = runner.params["cards.issuer_timeout"]
            what = {"down": f"goes down: the switch waits {timeout} s for answers that do not "
                            "come (91), or stands in for it (代授权) if cards.standin is on",
                    "slow": f"turns slow: its answers come after the switch's {timeout} s "
                            "timeout (68), and the switch reverses what it booked",
                    "up": "is back up"}[f["mode"]]
            out.print(f"[bold]{day} {when}[/] {f['participant']}'s issuer host {what}")
            action = runner.actions[-1] if runner.actions else {}
            if action.get("advices_delivered"):
                out.print(f"  the switch delivers {action['advices_delivered']} stand-in "
                          f"advice(s): {f['participant']} books them")
        elif event.do == "reversal":
            out.print(f"[bold]{day} {when}[/] reversal (冲正) of {f['target']}: the switch "
                      "undoes it exactly in both banks' books")
        elif event.do == "tick":
            own = _wallet_wakeups(runner, event.at_us)
            told = _tick_words(runner, event.at_us, "the app's own moment" if own else "")
            out.print(f"[bold]{day} {when}[/] {told}")
            for line in own:
                out.print(f"  {line}")
        elif event.do in ("cancel", "reprioritise", "pledge", "release"):
            action = runner.actions[-1] if runner.actions else {}
            target = f.get("target") or f.get("participant")
            verdict = "done" if action.get("ok") else \
                f"refused: {(action.get('reason') or {}).get('message', '')}"
            out.print(f"[bold]{day} {when}[/] {event.do} {target}: {verdict}")
        elif event.do == "set_param":
            out.print(f"[bold]{day} {when}[/] parameter {f['name']} set to {f['value']}")
        elif event.do in WALLET_EVENTS:
            for i, line in enumerate(_wallet_words(event, runner)):
                out.print(f"[bold]{day} {when}[/] {line}" if i == 0 else f"  {line}")
        for n in runner.step_notices:
            template = _NOTICE_WORDS.get(n.event)
            if template is None or n.event in ("credited",) or (
                    n.event.endswith(":settled") and n.participant == ""):
                continue
            text = template.format(ref=n.ref or "-", who=n.participant, detail=n.detail)
            out.print(f"  [yellow]{format_time(n.at_us)[11:16]}[/] {text}")
        _print_postings(out, postings, runner)
        if step:
            with contextlib.suppress(EOFError):  # input closed: no one to wait for
                wait("  press Enter for the next step ")

    return narrate


def _masked(pan: str) -> str:
    """A card number as the story shows it: first 6 and last 4 digits (a masked number
    from the app's records, 622202*********0014, is shown the same way)."""
    return f"{pan[:6]}...{pan[-4:]}"


def _wallet_words(event: Event, runner: Runner) -> list[str]:
    """An app event in words: what the user (or the issuer) did, then what the app, the
    institution, the switch or the issuer answered, read from the event's record in the
    wallets' outcome (after the step: an IBPS item the bank accepted at once is done)."""
    f = event.fields
    wallets = runner.world.wallets
    assert wallets is not None
    rec = wallets.records.get(str(f["id"]), {})

    def who(key: str = "user") -> str:
        user = wallets.users.get(str(f.get(key)))
        return f"{user.name} ({user.phone})" if user is not None else str(f.get(key))

    def name(customer: object) -> str:
        return runner.scenario.customer(str(customer)).name

    amount = format_fen(f["amount_fen"]) if "amount_fen" in f else ""
    card = _masked(f["card"]) if "card" in f else ""
    if event.do == "qr_pay":
        if f.get("code") is not None:
            code = wallets.codes.get(str(f["code"]))
            whose = who() if code is None else \
                f"{wallets.users[code.phone].name}'s"
            first = (f"the merchant at terminal {f['terminal']} scans {whose} payment code "
                     f"({f['code']}) for {amount} CNY (被扫)")
        else:
            voucher = f", using a voucher of campaign {f['voucher']}" \
                if f.get("voucher") is not None else ""
            first = (f"{who()} scans the QR code of terminal {f['terminal']} (主扫) and pays "
                     f"{amount} CNY with card {card}{voucher}")
    else:
        first = _WALLET_ASKS[event.do].format(
            who=who(), card=card, amount=amount, to=who("to"), payer=who("from"),
            campaign=f.get("campaign", ""), terminal=f.get("terminal", ""),
            from_card=_masked(f["from_card"]) if "from_card" in f else "")
    lines = [first]
    status = rec.get("status")
    if status in ("refused", "declined", "failed"):
        reason = rec.get("reason") or {}
        lines.append(f"[red]{status}[/] {reason.get('code', '')}: {reason.get('message', '')}"
                     + (" - nothing was booked" if status == "refused" else ""))
        return lines
    via_ibps = str(f["id"]) in runner.payments and event.do != "qr_pay"
    return lines + _wallet_outcome(event.do, rec, via_ibps, name)


def _wallet_wakeups(runner: Runner, at_us: int) -> list[str]:
    """The wallets' own steps at a wake-up (wallets/wake.py: a statement run, the transit
    batch, a campaign's close), told from their records of that moment: the latest ones,
    their ids written with a colon (a scenario's ids never have one)."""
    wallets = runner.world.wallets
    if wallets is None or not wallets.active:
        return []
    at = format_time(at_us)
    lines: list[str] = []
    for rid in reversed(wallets.records):
        rec = wallets.records[rid]
        if rec["at"] != at:
            break
        if ":" in rid and rec["status"] != "refused":
            card = _masked(str(rec["card"])) if "card" in rec else ""
            asked = _WALLET_ASKS[rec["do"]].format(
                who="", card=card, amount="", to="", payer="", terminal="", from_card="",
                campaign=rec.get("campaign", ""))
            lines[:0] = [asked, *_wallet_outcome(
                rec["do"], rec, False, lambda c: runner.scenario.customer(str(c)).name)]
    return lines


_WALLET_ASKS = {
    "bind_card": "{who} binds card {card} in the app (绑卡): the switch finds its issuer by "
                 "the card's BIN, and the issuer checks the card, its account and the "
                 "cardholder's name",
    "unbind_card": "{who} unbinds card {card} (解绑): the app can no longer use it",
    "card_balances": "{who} opens the balances of every bound card: a balance inquiry "
                     "(余额查询) goes through the switch to each issuer, with the user's "
                     "consent; the app keeps no copy",
    "payment_code": "{who} shows a payment code (付款码) for card {card}: one-time and "
                    "short-lived",
    "wallet_top_up": "{who} tops up the wallet (充值) with {amount} CNY from card {card} by "
                     "quick pay (快捷支付): a real-time IBPS debit (实时借记) of the card's "
                     "account for the institution",
    "wallet_withdrawal": "{who} withdraws {amount} CNY from the wallet to card {card} "
                         "(提现): the institution sends an IBPS credit to the card's bank",
    "wallet_transfer": "{payer} sends {to} {amount} CNY wallet to wallet (转账)",
    "claim_voucher": "{who} claims a voucher (领券) of campaign {campaign}",
    "credit_statement": "the issuer's statement run (账单日) for credit card {card}",
    "card_repayment": "{who} repays {amount} CNY of credit card {card} (还款) from debit "
                      "card {from_card}",
    "wallet_pay": "{who} scans the QR code of terminal {terminal} and pays {amount} CNY "
                  "from the wallet's balance (余额支付)",
    "close_campaign": "campaign {campaign} ends (活动结束): its validity window is over",
    "transit_ride": "{who} shows the transit code (乘车码) of card {card} at gate {terminal}: "
                    "fare {amount} CNY",
    "transit_clearing": "the gates' acquirer sends the batch of earlier days' rides "
                        "through the card switch (乘车码清算)",
}


def _wallet_outcome(do: str, rec: dict[str, Any], via_ibps: bool,
                    name: Callable[[object], str]) -> list[str]:
    """What an app event that was not refused did, in words."""
    pending = rec.get("status") == "pending"
    if do == "bind_card":
        return [f"{rec['issuer']} confirms: the card is bound, and with it the quick-pay "
                "agreement (快捷支付协议); the app keeps the card's token, never its number"]
    if do == "unbind_card":
        return ["done: its payment codes stop working"]
    if do == "card_balances":
        cards = rec.get("cards") or []
        return [f"card {_masked(c['card'])}: balance {c['balance']} CNY"
                if c["response_code"] == "00" else
                f"card {_masked(c['card'])}: the issuer answers {c['response_code']} "
                f"({c.get('message', '')})" for c in cards]
    if do == "payment_code":
        return [f"code {rec['code']}, valid until {str(rec['expires_at'])[11:19]}: the "
                "merchant may scan it once"]
    if do == "qr_pay":
        out = [f"the switch carries it to the issuer as a purchase (0200) at the merchant's "
               f"terminal; approved (00): the card pays {rec['card_paid']} CNY to "
               f"{name(rec['merchant'])}, which the switch clears at its cut-off with the "
               "merchant's MDR"]
        if rec.get("voucher") is not None:
            how = "in its own book" if rec.get("subsidy") == "book" else \
                f"by an IBPS credit ({rec.get('subsidy')})"
            out.append(f"the voucher (消费券) takes {rec['discount']} CNY off: the sponsor's "
                       f"bank pays {name(rec['merchant'])} the discount from the campaign's "
                       f"fund {how}, so the merchant receives the full {rec['price']} CNY")
        return out
    ibps = "pending while IBPS carries it" if pending else \
        "the receiving bank accepts it in real time"
    if do == "wallet_top_up":
        return [f"{ibps}; the institution's collection account is credited and the "
                "money goes to the wallet; its reserve (备付金) at the PBOC grows at the next "
                "IBPS session"]
    if do == "wallet_withdrawal":
        return [f"the wallet's money goes to the collection account, then out by IBPS: "
                f"{ibps}"]
    if do == "wallet_transfer":
        return ["booked at once in the institution's book, no bank involved"]
    if do == "claim_voucher":
        return [f"done: {rec['discount']} CNY off, valid until {str(rec['valid_until'])[:10]};"
                " the discount is committed against the campaign's budget (never overspent)"]
    if do == "credit_statement":
        interest = f"; interest {rec['interest']} CNY on what was unpaid after the last due " \
            "date" if rec.get("interest") not in (None, "0.00") else ""
        return [f"{rec['issuer']} finds {rec['owed']} CNY owed: minimum payment (最低还款额) "
                f"{rec['minimum']} CNY, due (到期还款日) {str(rec['due'])[:10]}{interest}"]
    if do == "card_repayment":
        against = f" (statement {rec['statement']}: minimum {rec['minimum']} CNY due " \
            f"{str(rec['due'])[:10]})" if rec.get("statement") else ""
        how = f"an IBPS credit to the issuer: {ibps}" if via_ibps else \
            "booked at once: both cards are the issuer's"
        return [f"{how}{against}"]
    if do == "wallet_pay":
        how = f"an IBPS credit to {name(rec['merchant'])}'s bank: {ibps}" if via_ibps else \
            f"booked at once: {name(rec['merchant'])} banks with the institution"
        return [f"the institution takes it from the wallet to its collection account and "
                f"pays the merchant by {how}; no card, no switch"]
    if do == "close_campaign":
        return [f"{rec['expired']} unused voucher(s) expire; the unused budget, "
                f"{rec['returned']} CNY, goes back from the campaign's fund to the sponsor "
                f"{name(rec['sponsor'])}"]
    if do == "transit_ride":
        return ["the gate opens at once, authorised offline (脱机): no switch, no issuer; "
                "within the per-ride and daily offline limits, it waits for the next day's "
                "batch"]
    if do == "transit_clearing":
        out = [f"{rec['rides']} ride(s): each a purchase (0200) at its gate's terminal, "
               f"decided by the issuer; {len(rec['cleared'])} approved for {rec['amount']} "
               "CNY, cleared at the switch's cut-off"]
        out += [f"[red]declined[/] {d['ride']} ({d['response_code']}: {d['message']}): the "
                "rider owes the fare (欠费); the gates refuse the code until a later batch "
                "collects it" for d in rec.get("declined") or []]
        return out
    return ["done"]


def _tick_words(runner: Runner, at_us: int, other: str = "") -> str:
    """What a wake-up of the clock is: each scheduled step of the systems due at ``at_us``
    (the card switch's cut-off, a net settlement session in HVPS, HVPS's day cycle)."""
    steps = _card_cutoff(runner, at_us) + _net_sessions(runner, at_us) + \
        _hvps_day(runner, at_us)
    if not steps and runner.cnaps.hvps.last_lsm_us == at_us:
        steps.append(f"HVPS's periodic gridlock search (every "
                     f"{runner.params['hvps.lsm_interval_minutes']} minutes while payments "
                     "queue)")
    return "; ".join(steps) or other or "a scheduled step of the payment systems"


def _card_cutoff(runner: Runner, at_us: int) -> list[str]:
    local = to_beijing_naive(at_us)
    if local.hour * 60 + local.minute != runner.params["cards.cutoff"]:
        return []
    days = [n.ref.split(":", 1)[1] for n in runner.step_notices
            if n.event == "CUPS:netted" and n.ref.startswith("cards:")]
    closed = f": clearing day {', '.join(days)} closes" if days else ""
    return [f"the card switch's cut-off (日切){closed}; it computes each bank's net position, "
            "fees included (清分), to settle in HVPS at the next CUPS session"]


def _net_sessions(runner: Runner, at_us: int) -> list[str]:
    steps = []
    for name, net in sorted(runner.cnaps.net.items()):
        for session in (s for s in net.sessions if s["at_us"] == at_us):
            if name == "CUPS":
                days = [ref.split(":", 1)[1] for ref in net.settled_batches
                        if ref.startswith("cards:") and net.items[ref].settled_us == at_us]
                what = (f"the card switch's positions of clearing day {', '.join(days)}"
                        if days else "the card switch's positions")
                head = "the CUPS net settlement session in HVPS"
            else:
                what = f"the {name} net positions"
                head = f"the {name} net settlement session in HVPS"
            if session["status"] == "settled":
                steps.append(f"{head}: {what} settle in central-bank money")
            else:
                steps.append(f"{head} {session['status']}")
    return steps


def _hvps_day(runner: Runner, at_us: int) -> list[str]:
    hvps = runner.cnaps.hvps
    phase, business_date = hvps.phase(at_us)
    if phase is HvpsPhase.OPEN and hvps.phase(at_us - 1)[0] is not HvpsPhase.OPEN:
        return [f"HVPS opens for business day {business_date}: the banks send the payments "
                "they held"]
    sched = hvps.schedule()
    day = to_beijing_naive(at_us).date()
    if runner.params["hvps.closed"] or not sched.calendar.is_business_day(day):
        return []
    session = sched.session(day)
    if from_datetime(session.cutoff_at) == at_us:
        return ["HVPS's business cut-off (业务截止): the clearing window (清算窗口) opens"]
    if from_datetime(session.closes_at) == at_us:
        return ["HVPS's end of day (日终): what is still queued is returned"]
    return []


def _verdict(record: PaymentRecord) -> str:
    """A card answer in words: approved, or declined with its code and reason."""
    if record.status == "approved":
        return "approved (00)"
    reason = (record.reason or {}).get("message", "")
    return f"declined ({record.response_code}: {reason})"


def _print_postings(out: Console, postings: list[Posting], runner: Runner) -> None:
    """Each posting with the balances it leaves (posted balance on the account's normal
    side), walking forward from the balances before the step."""
    ledger = runner.engine.ledger

    def effect(p: Posting, account: int) -> int:
        if p.phase in ("pending", "void"):
            return 0
        normal_debit = ledger.account(account).normal.name == "DEBIT"
        side_debit = account == p.debit_id
        return p.amount_fen if normal_debit == side_debit else -p.amount_fen

    running: dict[int, int] = {}
    for p in postings:
        for account in (p.debit_id, p.credit_id):
            if account not in running:
                running[account] = ledger.balance(account).posted_fen - sum(
                    effect(q, account) for q in postings if account in (q.debit_id, q.credit_id))
    for p in postings:
        running[p.debit_id] += effect(p, p.debit_id)
        running[p.credit_id] += effect(p, p.credit_id)
        amount = format_fen(p.amount_fen)
        if p.phase == "pending":
            out.print(f"  [cyan]{p.book}[/] book: reserve {amount} of {p.debit} for "
                      f"{p.credit} (pending: the customer can no longer spend it)")
        elif p.phase == "void":
            out.print(f"  [cyan]{p.book}[/] book: release the reservation of {amount} on "
                      f"{p.debit} (the money is the customer's again)")
        else:
            what = "book the reservation: " if p.phase == "post" else ""
            out.print(f"  [cyan]{p.book}[/] book: {what}debit {p.debit} {amount} (now "
                      f"{format_fen(running[p.debit_id])}), credit {p.credit} (now "
                      f"{format_fen(running[p.credit_id])})")
