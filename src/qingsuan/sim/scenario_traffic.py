"""The ``traffic:`` block of a scenario (docs/SIMULATE.md): the generated workload.
"""

from __future__ import annotations

from qingsuan.money import AmountError, format_fen, parse_amount
from qingsuan.params import Params
from qingsuan.sim.scenario_checker import FileChecker
from qingsuan.sim.sim_blocks import share_ppm
from qingsuan.sim.sim_cards import (
    CARD_CREDIT_SHARE_PPM,
    CARD_ITEMS_PER_DAY,
    CARD_MDR_PPM,
    CARD_SIGMA,
    CARD_VALUE_PER_DAY_FEN,
    MAX_CARD_ITEMS_PER_DAY,
    CardTraffic,
)
from qingsuan.sim.traffic import (
    DEFAULTS,
    MAX_CUSTOMERS_PER_BANK,
    MAX_ITEMS_PER_DAY,
    MAX_VALUE_PER_DAY_FEN,
    SystemTraffic,
    TrafficSpec,
    TrafficSystem,
)
from qingsuan.sim.yamlloc import LDict


def parse_traffic(ck: FileChecker, top: LDict, params: Params) -> TrafficSpec | None:
    """The ``traffic:`` block (docs/SIMULATE.md): a mapping, or nothing (absent, ``[]``)."""
    raw = top.get("traffic")
    if not raw:
        return None
    doc = ck.mapping(raw, top.line_of("traffic"), "traffic")
    if doc is None or not ck.keys(doc, "traffic", (), (
            "scale", "zipf", "customers_per_bank", "customer_liquidity",
            "settlement_liquidity", "systems")):
        return None
    bad = False

    def number(d: LDict, key: str, what: str, lo: float, hi: float, default: float
               ) -> float:
        nonlocal bad
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not lo < value <= hi:
            ck.add(d.line_of(key), f"{what}: {key} must be a number above {lo:g} and at "
                                   f"most {hi:g} (got {value!r})")
            bad = True
            return default
        return float(value)

    scale = number(doc, "scale", "traffic", 0, 100, 1.0)
    zipf = number(doc, "zipf", "traffic", 0, 5, 1.1)
    per_bank = doc.get("customers_per_bank", 0)
    if isinstance(per_bank, bool) or not isinstance(per_bank, int) \
            or not 0 <= per_bank <= MAX_CUSTOMERS_PER_BANK:
        ck.add(doc.line_of("customers_per_bank"), f"traffic: customers_per_bank must be a "
               f"whole number from 0 to {MAX_CUSTOMERS_PER_BANK:,} (got {per_bank!r})")
        bad, per_bank = True, 0
    customer_liquidity = number(doc, "customer_liquidity", "traffic", 0, 1_000, 2.0)
    settlement = (number(doc, "settlement_liquidity", "traffic", 0, 1_000, 1.0)
                  if "settlement_liquidity" in doc else None)
    limits = {TrafficSystem.BEPS: int(params["beps.item_limit"]),
              TrafficSystem.IBPS: int(params["ibps.item_limit"])}
    systems = []
    raw_systems = doc.get("systems")
    sdoc = (ck.mapping(raw_systems, doc.line_of("systems"), "traffic: systems")
            if raw_systems is not None else None)
    names = list(sdoc) if sdoc is not None else [k.name for k in TrafficSystem]
    if raw_systems is not None and sdoc is None:
        return None
    cards: CardTraffic | None = None
    for key in names:
        kind = TrafficSystem.__members__.get(str(key))
        line = sdoc.line_of(key) if sdoc is not None else doc.line
        if key == "cards" and sdoc is not None:
            cards = _cards(ck, sdoc, scale)
            bad |= cards is None
            continue
        if kind is None:
            ck.add(line, f"traffic: systems: unknown system {key!r} (HVPS, BEPS, IBPS or "
                         f"cards)")
            bad = True
            continue
        d = DEFAULTS[kind]
        one = sdoc.get(key) if sdoc is not None else None
        if one is None:  # `HVPS:` alone, or no systems: the defaults
            one = LDict()
            one.line, one.key_lines = line, {}
        sd = ck.mapping(one, line, f"traffic: {kind.name}")
        if sd is None or not ck.keys(sd, f"traffic: {kind.name}", (),
                                     ("items_per_day", "value_per_day", "sigma")):
            bad = True
            continue
        items = sd.get("items_per_day", d.items_per_day)
        if isinstance(items, bool) or not isinstance(items, int) or items < 1:
            ck.add(sd.line_of("items_per_day"), f"traffic: {kind.name}: items_per_day must "
                                                f"be a whole number above 0 (got {items!r})")
            bad = True
            continue
        value: int | None = d.value_per_day_fen
        if "value_per_day" in sd:  # a whole system's day: beyond one payment's bound
            try:
                value = parse_amount(sd["value_per_day"], allow_zero=False,
                                     field=f"traffic: {kind.name}: value_per_day",
                                     max_fen=MAX_VALUE_PER_DAY_FEN)
            except AmountError as exc:
                ck.add(sd.line_of("value_per_day"), str(exc))
                value = None
        sigma = number(sd, "sigma", f"traffic: {kind.name}", 0, 4, d.sigma)
        if value is None:
            bad = True
            continue
        if round(items * scale) > MAX_ITEMS_PER_DAY:
            ck.add(line, f"traffic: {kind.name}: {items:,} items a day at scale {scale:g} "
                         f"is more than {MAX_ITEMS_PER_DAY:,}")
            bad = True
        # the banks route an item by its amount: the mean must fit the system's range
        lo = limits[TrafficSystem.BEPS] if kind is TrafficSystem.HVPS else 0
        hi = limits.get(kind)
        mean = value / items
        if not (lo < mean and (hi is None or mean < hi)):
            where = (f"above the BEPS item limit {format_fen(lo)}" if hi is None else
                     f"below the {kind.name} item limit {format_fen(hi)}")
            ck.add(line, f"traffic: {kind.name}: the mean per item "
                         f"{format_fen(round(mean))} must be {where}")
            bad = True
        systems.append(SystemTraffic(kind, items, value, sigma))
    if bad:
        return None
    return TrafficSpec(tuple(systems), scale, zipf, per_bank, customer_liquidity, settlement,
                       top.line_of("traffic"), cards)


def _cards(ck: FileChecker, sdoc: LDict, scale: float) -> CardTraffic | None:
    """``systems: cards:`` (docs/SIMULATE.md, "Card traffic"): the card day's targets, the
    lognormal's shape, the share of credit cards and the generated merchants' rate."""
    line = sdoc.line_of("cards")
    one = sdoc.get("cards")
    if one is None:  # `cards:` alone: the defaults
        one = LDict()
        one.line, one.key_lines = line, {}
    cd = ck.mapping(one, line, "traffic: cards")
    if cd is None or not ck.keys(cd, "traffic: cards", (), (
            "items_per_day", "value_per_day", "sigma", "credit_share", "mdr")):
        return None
    items = cd.get("items_per_day", CARD_ITEMS_PER_DAY)
    if isinstance(items, bool) or not isinstance(items, int) or items < 1:
        ck.add(cd.line_of("items_per_day"), f"traffic: cards: items_per_day must be a whole "
                                            f"number above 0 (got {items!r})")
        return None
    value = CARD_VALUE_PER_DAY_FEN
    if "value_per_day" in cd:
        try:
            value = parse_amount(cd["value_per_day"], allow_zero=False,
                                 field="traffic: cards: value_per_day",
                                 max_fen=MAX_VALUE_PER_DAY_FEN)
        except AmountError as exc:
            ck.add(cd.line_of("value_per_day"), str(exc))
            return None
    sigma = cd.get("sigma", CARD_SIGMA)
    if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not 0 < sigma <= 4:
        ck.add(cd.line_of("sigma"), f"traffic: cards: sigma must be a number above 0 and at "
                                    f"most 4 (got {sigma!r})")
        return None
    credit = (share_ppm(ck, cd, "credit_share", "traffic: cards", lo_open=False)
              if "credit_share" in cd else CARD_CREDIT_SHARE_PPM)
    mdr = (share_ppm(ck, cd, "mdr", "traffic: cards", lo_open=False)
           if "mdr" in cd else CARD_MDR_PPM)
    if credit is None or mdr is None:
        return None
    if value < items:
        ck.add(line, "traffic: cards: value_per_day must be at least 0.01 CNY per item")
        return None
    if round(items * scale) > MAX_CARD_ITEMS_PER_DAY:
        ck.add(line, f"traffic: cards: {items:,} items a day at scale {scale:g} is more "
                     f"than {MAX_CARD_ITEMS_PER_DAY:,}")
        return None
    return CardTraffic(items, value, float(sigma), scale, credit, mdr)


