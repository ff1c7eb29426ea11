"""``qingsuan serve``, ``qingsuan cards send`` and ``qingsuan cards load``: the card port
for people (registered on the app by :mod:`qingsuan.cli`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from qingsuan.cli_common import (
    EXIT_INVALID,
    clip,
    err,
    fail,
    load_or_exit,
    quoted,
    reason,
    store_url,
    stored_world_spec,
)

DEFAULT_PORT = 8583


def _sandbox() -> Path:
    return Path(str(resources.files("qingsuan") / "scenarios" / "card-sandbox.yaml"))


def _same_world_or_exit(store: str, world: Any, file: Path, key_file: str | None) -> None:
    """A store that holds a world is served as that world: a scenario file naming another
    world is refused (it would be silently ignored), exit 2."""
    import json

    from qingsuan.cards.vault import CardKeyError, resolve
    from qingsuan.world import world_spec

    url = store_url(store)
    if url.kind == "memory" or (url.path is not None and (
            not url.path.exists() or url.path.stat().st_size == 0)):
        return
    spec, count = stored_world_spec(url)
    if spec is None:
        return
    try:  # the cards as the store's own key makes them (cards/vault.py)
        vault = resolve(str(url.path) if url.path else url.text, key_file=key_file) \
            if world.cards else None
    except CardKeyError as exc:
        fail(f"--store: {exc}")
    mine = json.loads(json.dumps(world_spec(world, vault), sort_keys=True,
                                 ensure_ascii=False))
    if spec != mine:
        fail(f"--store: {quoted(store)} holds the world {quoted(spec.get('name'))} "
             f"({count} log entries), not the one {quoted(str(file))} describes: serve it "
             "without a scenario file (or with the one it was built from), or give another "
             "--store")


def _scenario(path: Path | None) -> Any:
    return load_or_exit(path or _sandbox())


def _key(text: str | None, name: str, sizes: tuple[int, ...]) -> bytes | None:
    if text is None:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) not in sizes:
        err().print(f"--{name}: {' or '.join(str(2 * s) for s in sizes)} hex digits",
                     markup=False)
        raise typer.Exit(EXIT_INVALID)
    return key


Frame = Annotated[str, typer.Option("--frame", help="length prefix: binary2 (2 bytes, "
                                    "big-endian) or ascii4 (4 digits)")]


def serve(
    scenario: Annotated[Path | None, typer.Argument(
        help="the world to open the first time the store is used (default: the built-in "
             "card sandbox, scenarios/card-sandbox.yaml)")] = None,
    store: Annotated[str, typer.Option(
        help="the durable command log (SQLite file or postgresql://...): the world lives "
             "here; opening it again replays it")] = "qingsuan-sandbox.db",
    host: Annotated[str, typer.Option(help="address of the ISO 8583 port")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="ISO 8583 port (0: any free port)")] = DEFAULT_PORT,
    frame: Frame = "binary2",
    core: Annotated[str, typer.Option(
        help="where the engine runs: process (a second process: parsing and deciding "
             "overlap) or inline")] = "process",
    mac_key: Annotated[str | None, typer.Option(
        help="MAC key in hex (3DES: 32 or 48 digits, SM4: 32): every request must carry "
             "a valid field 128 and every response gets one; default: no MACs")] = None,
    mac_algorithm: Annotated[str, typer.Option(help="3des or sm4")] = "3des",
    zpk: Annotated[str | None, typer.Option(
        help="zone PIN key (3DES, hex) the terminals' PIN blocks are under; default the "
             "sandbox key (docs/SERVE.md)")] = None,
    card_key_file: Annotated[str | None, typer.Option(
        help="the world's card key (64 hex digits; made at random for a new world): "
             "tokens, encrypted PANs, PIN values (docs/SECURITY.md); default "
             "$QINGSUAN_CARD_KEY, else STORE.keys beside the store")] = None,
    snapshot_every: Annotated[int, typer.Option(
        help="store a snapshot every N log entries (a batch of requests is one entry), so "
             "a restart replays only what came after it; 0: never")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="log every connection")] = False,
    max_connections: Annotated[int, typer.Option(
        help="connections at once; when full, a new one closes the idlest (one with "
             "nothing unanswered)")] = 1024,
    max_connections_per_client: Annotated[int, typer.Option(
        help="connections at once from one client address")] = 256,
    idle_timeout_ms: Annotated[int, typer.Option(
        help="close a connection with nothing unanswered that sent no request for this "
             "long")] = 120_000,
    read_timeout_ms: Annotated[int, typer.Option(
        help="close a connection whose frame is not complete this long after its first "
             "byte (slow loris)")] = 10_000,
    write_buffer_bytes: Annotated[int, typer.Option(
        help="answers buffered for a peer before its reading pauses; past 4 times this it "
             "is cut off")] = 1 << 20,
    drain_timeout_ms: Annotated[int, typer.Option(
        help="cut off a peer whose answers stay over --write-buffer-bytes this long (it "
             "does not read them)")] = 10_000,
    warnings_per_minute: Annotated[int, typer.Option(
        help="warnings of one kind (refusals, timeouts, bad input) logged a minute; the "
             "rest are counted in one line")] = 60,
    http: Annotated[bool, typer.Option(
        "--http/--no-http", help="serve the HTTP API (CNAPS for participants' hubs, the "
                                 "operator's clock; docs/SERVER.md) beside the card port")
                    ] = True,
    http_host: Annotated[str, typer.Option(help="address of the HTTP API")] = "127.0.0.1",
    http_port: Annotated[int | None, typer.Option(
        help="HTTP API port (0: any free port; the line on stdout names it); default 8080, "
             "and if 8080 is taken the server runs without HTTP, saying so")] = None,
    api_keys: Annotated[str, typer.Option(
        help="random: each participant's key and the operator's made when first served, "
             "printed once, only their SHA-256 kept (--api-key-file); sandbox: the "
             "documented keys sandbox-<NAME> and sandbox-operator (no protection)")
                        ] = "random",
    api_key_file: Annotated[str | None, typer.Option(
        help="where the keys' SHA-256 hashes are kept (default: STORE.apikeys beside a "
             "SQLite store; none for memory: and postgresql:// stores, whose keys are "
             "made anew at each start)")] = None,
    clock: Annotated[str, typer.Option(
        help="wall: Beijing time; virtual: the clock moves only when the operator moves "
             "it (POST /v1/operator/clock), and starts at the log's last time")] = "wall",
    clock_start: Annotated[str | None, typer.Option(
        help="with --clock virtual: start here (ISO 8601, Beijing time), not before the "
             "log's last time")] = None,
) -> None:
    """Open the sandbox: the card switch's ISO 8583 port over TCP (the acquirers connect
    to it) and the HTTP API (participants' hubs send ISO 20022 and JSON, the operator
    moves the clock; OpenAPI at /docs), one engine behind both.

    Every request is in the durable log before it is answered. SIGTERM or Ctrl-C stops
    cleanly: nothing more is accepted, everything received is answered, the log is closed,
    exit 0. Exit 1 if the engine stopped on a command it could not apply (restart: the
    log holds everything acknowledged), 2 on bad options.
    """
    from qingsuan.cards.vault import CardKeyError
    from qingsuan.server.card_core import card_vault, edge_config
    from qingsuan.server.card_tcp import (
        CardServer,
        InlineCore,
        Limits,
        ProcessCore,
        new_event_loop,
    )

    if not 0 <= port <= 65535:
        err().print(f"--port must be 0 to 65535, got {port}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if frame not in ("binary2", "ascii4") or core not in ("process", "inline") or \
            mac_algorithm not in ("3des", "sm4"):
        err().print("--frame is binary2 or ascii4, --core process or inline, "
                     "--mac-algorithm 3des or sm4", markup=False)
        raise typer.Exit(EXIT_INVALID)
    sandbox_clock = _clock_or_exit(clock, clock_start)
    if http_port is not None and not 0 <= http_port <= 65535:
        err().print(f"--http-port must be 0 to 65535, got {http_port}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if api_keys not in ("random", "sandbox"):
        err().print("--api-keys is random or sandbox", markup=False)
        raise typer.Exit(EXIT_INVALID)
    world = _scenario(scenario)
    keys: dict[str, Any] = {"mac_key": _key(mac_key, "mac-key", (16, 24) if mac_algorithm ==
                                            "3des" else (16,)),
                            "mac_algorithm": mac_algorithm}
    zone = _key(zpk, "zpk", (16, 24))
    if zone is not None:
        keys["zpk"] = zone
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("qingsuan.serve").setLevel(logging.INFO if verbose else logging.WARNING)
    url = store if "://" in store or store.startswith("memory:") else f"sqlite:///{store}"
    if scenario is not None:
        _same_world_or_exit(store, world, scenario, card_key_file)

    if snapshot_every < 0:
        err().print("--snapshot-every must be >= 0", markup=False)
        raise typer.Exit(EXIT_INVALID)
    try:
        limits = Limits(max_connections=max_connections,
                        max_connections_per_client=max_connections_per_client,
                        idle_timeout_ms=idle_timeout_ms, read_timeout_ms=read_timeout_ms,
                        write_buffer_bytes=write_buffer_bytes,
                        drain_timeout_ms=drain_timeout_ms,
                        warnings_per_minute=warnings_per_minute)
    except ValueError as exc:
        err().print(f"--{str(exc).replace('_', '-')}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None

    try:  # once, before the core starts: the edge and the core share it
        vault, key_path = card_vault(world, url, card_key_file)
    except CardKeyError as exc:
        err().print(f"--card-key-file: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None

    api = _http_or_exit(http, http_host, http_port, api_keys, api_key_file, url, world)

    def factory() -> Any:
        from qingsuan.server.http import SandboxClock, SandboxCore

        the_core = SandboxCore(world, url, SandboxClock(*sandbox_clock),
                               snapshot_every=snapshot_every, vault=vault, key_file=key_path)
        if api.sock is not None:
            try:
                api.start(the_core)
            except Exception:
                the_core.close()
                raise
        return the_core

    cfg = edge_config(world, vault, **keys)
    try:
        engine_core = ProcessCore(factory) if core == "process" else InlineCore(factory)
    except Exception as exc:  # a store that is not this world's, a broken chain, ...
        api.close_socket()
        err().print(f"cannot open {store}: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if core == "process":
        api.close_socket()  # (the core process serves it)
    api.keys_made()
    server = CardServer(cfg, engine_core, frame_format=frame,  # type: ignore[arg-type]
                        limits=limits)

    def ready(bound_host: str, bound_port: int) -> None:
        # one line on stdout that scripts (and the tests) wait for, then the HTTP API's
        sys.stdout.write(f"qingsuan: card switch listening on {bound_host}:{bound_port} "
                         f"({frame}), log {store}\n")
        for line in api.ready_lines():
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    loop = new_event_loop()
    try:
        status = loop.run_until_complete(server.serve(host, port, ready))
    except OSError as exc:  # (serve has closed the core)
        err().print(f"cannot listen on {host}:{port}: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    finally:
        loop.close()
    stats = server.stats
    err().print(f"qingsuan: stopped cleanly after {stats.requests} requests "
                 f"({stats.answered} answered by the switch, {stats.edge_replies} at the edge, "
                 f"{stats.dropped} dropped)" if status == 0 else
                 f"qingsuan: the engine stopped: {server.failure}", markup=False)
    raise typer.Exit(status)


def _clock_or_exit(mode: str, start: str | None) -> tuple[Any, int | None]:
    """``--clock`` and ``--clock-start`` as the sandbox clock's arguments; exit 2 if bad."""
    from qingsuan.clock import parse_time

    if mode not in ("wall", "virtual"):
        fail("--clock is wall or virtual")
    if start is None:
        return mode, None
    if mode != "virtual":
        fail("--clock-start goes with --clock virtual")
    try:
        return mode, parse_time(start, field="--clock-start")
    except (ValueError, OverflowError) as exc:
        fail(str(exc))


def _http_or_exit(on: bool, host: str, port: int | None, key_kind: str,
                  key_file: str | None, url: str, world: Any) -> Any:
    """The HTTP API's socket (bound now: a port in use is exit 2, unless it is the default
    port, which is then left off with a warning) and keys. Exit 2 on a key file that
    cannot be read."""
    from qingsuan.server.http.launch import HttpLaunch

    if not on:
        return HttpLaunch.off()
    try:
        return HttpLaunch.prepare(host, port, key_kind, key_file, url, world)
    except (OSError, ValueError) as exc:
        fail(f"--http-port {port}: {exc}" if isinstance(exc, OSError) else str(exc))


#: the kinds of request that need a card number (field 2); the others name their original
_NEED_CARD: Final = ("purchase", "withdrawal", "balance", "refund", "preauth")
#: the kinds that name an original (field 90), and the MTI of that original by default
_ORIGINAL_MTI: Final = {"void": "0200", "refund": "0200", "reversal": "0200",
                        "preauth-cancel": "0100", "completion": "0100"}
_ORIGINAL_RE: Final = re.compile(r"^(?:(0100|0200|0220|0400)/)?(\d{1,6})/(\d{10})$")
MAX_STAN: Final = 999_999


def default_stan(now_ns: int | None = None) -> int:
    """A STAN (field 11) that differs between sends (1..999999): the milliseconds of the
    clock, so two sends in one second are not the same request (the switch answers a
    repeated STAN and transmission time with 94, duplicate)."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    return ms % MAX_STAN + 1


def parse_original(text: str, kind: str) -> tuple[str, str, str]:
    """(MTI, STAN, MMDDhhmmss) of ``--original [MTI/]STAN/MMDDhhmmss``; ValueError if not."""
    match = _ORIGINAL_RE.match(text)
    if match is None:
        raise ValueError(f"--original {quoted(text)}: expected [MTI/]STAN/MMDDhhmmss, e.g. "
                         "000001/1125103000 or 0100/000004/1125103100")
    mti, o_stan, o_time = match.groups()
    try:  # a real moment (2028 is a leap year: 29 February is a valid MMDD)
        dt.datetime.strptime(f"2028{o_time}", "%Y%m%d%H%M%S")
    except ValueError:
        raise ValueError(f"--original {quoted(text)}: {o_time} is not a time MMDDhhmmss"
                         ) from None
    if int(o_stan) == 0:
        raise ValueError(f"--original {quoted(text)}: the STAN is 1 to {MAX_STAN}")
    return mti or _ORIGINAL_MTI[kind], o_stan.rjust(6, "0"), o_time


def cards_send(
    kind: Annotated[str, typer.Argument(
        help="purchase, withdrawal, balance, void, refund, reversal, preauth, "
             "preauth-cancel or completion")],
    card: Annotated[str | None, typer.Option(
        help="card number (PAN): needed by purchase, withdrawal, balance, refund, "
             "preauth")] = None,
    terminal: Annotated[str, typer.Option(help="terminal id (field 41)")] = "POS00CCB",
    amount: Annotated[str | None, typer.Option(help="amount in CNY, e.g. 36.00")] = None,
    pin: Annotated[str | None, typer.Option(
        help="the PIN: sent only as a PIN block under the zone PIN key")] = None,
    stan: Annotated[int | None, typer.Option(
        help="system trace audit number (field 11), 1 to 999999; default from the clock's "
             "milliseconds, so two sends differ")] = None,
    original: Annotated[str | None, typer.Option(
        help="for void, refund, reversal, preauth-cancel, completion: the original's STAN "
             "and transmission time (field 7) as STAN/MMDDhhmmss, with its MTI first if "
             "not 0200 (0100 for the pre-authorisation of a cancel or completion): "
             "0400/000001/1125103000")] = None,
    scenario: Annotated[Path | None, typer.Option(
        help="the world, to find the terminal's acquirer (default: the card sandbox)")] = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = DEFAULT_PORT,
    frame: Frame = "binary2",
    mac_key: Annotated[str | None, typer.Option(help="MAC key in hex (3DES)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the answer's fields as JSON")
                       ] = False,
) -> None:
    """Send one ISO 8583 request to `qingsuan serve` and print the decoded answer (the
    PAN masked). Exit 0 when approved (39 = 00), 1 when declined, 2 on bad input or no
    answer."""
    from qingsuan.cards.iso8583 import encode_message
    from qingsuan.clock import BEIJING
    from qingsuan.money import AmountError, parse_amount
    from qingsuan.server.card_client import (
        KINDS,
        ClientWorld,
        describe,
        original_data,
        request_fields,
        send_one,
    )

    if kind not in KINDS:
        fail(f"unknown request kind {quoted(kind)}; one of {', '.join(KINDS)}")
    if stan is not None and not 1 <= stan <= MAX_STAN:
        fail(f"--stan must be 1 to {MAX_STAN}, got {clip(str(stan))}")
    if kind in _NEED_CARD and card is None:
        fail(f"{kind} needs --card (the card number)")
    if kind in _ORIGINAL_MTI and original is None:
        fail(f"{kind} needs --original [MTI/]STAN/MMDDhhmmss (the original request)")
    if kind not in _ORIGINAL_MTI and original is not None:
        fail(f"{kind} names no original: --original is for {', '.join(_ORIGINAL_MTI)}")
    if not 0 < port <= 65535:
        fail(f"--port must be 1 to 65535, got {clip(str(port))}")
    if frame not in ("binary2", "ascii4"):
        fail(f"--frame is binary2 or ascii4, got {quoted(frame)}")
    mac = _key(mac_key, "mac-key", (16, 24))
    world = ClientWorld.from_scenario(_scenario(scenario))
    sent_stan = default_stan() if stan is None else stan
    try:
        term = world.terminal(terminal)
        amount_fen = parse_amount(amount, field="--amount") if amount is not None else None
        orig = None
        if original is not None:
            mti, o_stan, o_time = parse_original(original, kind)
            orig = original_data(mti, o_stan, o_time, term.institution)
        mti, fields = request_fields(kind, card=card, terminal=term, stan=sent_stan,
                                     at=dt.datetime.now(BEIJING), amount_fen=amount_fen,
                                     pin=pin, original=orig)
        raw = encode_message(mti, fields, mac_key=mac)
    except (ValueError, AmountError) as exc:
        fail(reason(exc))
    try:
        answer = send_one(host, port, raw, frame_format=frame)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:  # (ValueError: an impossible length header)
        fail(f"no answer from {clip(host)}:{port}: {reason(exc)}")
    rows = describe(answer)
    if as_json:
        sys.stdout.write(json.dumps(dict(rows), ensure_ascii=False) + "\n")
    else:
        table = Table(title=f"answer to {kind} (STAN {sent_stan:06d})")
        table.add_column("field")
        table.add_column("value")
        for key, value in rows:
            table.add_row(key, value)
        Console(highlight=False).print(table)
    code = dict(rows).get("39", "")
    raise typer.Exit(0 if code.startswith("00") else 1 if code else EXIT_INVALID)


def cards_load(
    connections: Annotated[int, typer.Option(help="TCP connections")] = 8,
    in_flight: Annotated[int, typer.Option(help="requests in flight at once, over all "
                                                "connections")] = 64,
    rate: Annotated[int, typer.Option(help="requests per second (0: as fast as the switch "
                                           "answers)")] = 0,
    duration: Annotated[float, typer.Option(help="seconds")] = 10.0,
    mix: Annotated[str, typer.Option(help="weights of purchase, withdrawal, balance")
                   ] = "purchase=7,withdrawal=3",
    seed: Annotated[int, typer.Option(help="seed of the request mix")] = 1,
    pin: Annotated[str, typer.Option(help="the test cards' PIN")] = "123456",
    scenario: Annotated[Path | None, typer.Option(
        help="the world whose cards and terminals to use (default: the card sandbox)")
                        ] = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = DEFAULT_PORT,
    frame: Frame = "binary2",
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Load generator: keep IN_FLIGHT requests in flight over CONNECTIONS connections for
    DURATION seconds, with a live progress display, then print throughput (overall and per
    second) and latency percentiles. Exit 0 when every request was answered, 1 if some were
    not, 2 on bad options or no connection."""
    from rich.live import Live

    from qingsuan.server.card_client import ClientWorld, LoadPlan, LoadReport, parse_mix, run_load
    from qingsuan.server.card_tcp import new_event_loop

    try:
        plan = LoadPlan(connections, in_flight, rate, duration, parse_mix(mix), seed, pin)
        plan.check()
    except ValueError as exc:
        err().print(str(exc), markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    world = ClientWorld.from_scenario(_scenario(scenario))
    console = Console(stderr=True, highlight=False)

    def panel(elapsed: float, report: LoadReport) -> Table:
        last = report.per_second[-1] if report.per_second else 0
        recent = report.latencies_us[-max(last, 1):]
        table = Table.grid(padding=(0, 2))
        p99 = sorted(recent)[int(len(recent) * 0.99)] / 1e3 if recent else 0.0
        table.add_row(f"{min(elapsed, duration):5.1f}/{duration:.0f} s",
                      f"answered {report.answered:,}", f"last second {last:,}/s",
                      f"p99 {p99:.1f} ms", f"in flight {report.sent - report.answered:,}")
        return table

    loop = new_event_loop()
    try:
        with Live(panel(0, LoadReport()), console=console, transient=True,
                  refresh_per_second=4) as live:
            report = loop.run_until_complete(run_load(
                host, port, world, plan, frame_format=frame,  # type: ignore[arg-type]
                progress=lambda t, r: live.update(panel(t, r))))
    except OSError as exc:
        err().print(f"cannot load {host}:{port}: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    finally:
        loop.close()
    doc = report.to_json()
    if as_json:
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        table = Table(title=f"cards load: {connections} connections, {in_flight} in flight, "
                            f"{duration:g} s, mix {mix}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("answered", f"{report.answered:,} of {report.sent:,} sent")
        table.add_row("throughput", f"{doc['throughput_per_s']:,.0f}/s")
        table.add_row("per second (min / median)",
                      f"{doc['per_second_min']:,} / {doc['per_second_median']:,.0f}")
        for name, ms in doc["latency_ms"].items():
            table.add_row(f"latency {name}", f"{ms:.2f} ms")
        table.add_row("response codes", ", ".join(f"{k}: {v:,}" for k, v in
                                                  doc["response_codes"].items()))
        if report.unanswered or report.malformed:
            table.add_row("unanswered / malformed", f"{report.unanswered} / {report.malformed}")
        Console(highlight=False).print(table)
    raise typer.Exit(0 if not report.unanswered and not report.malformed else 1)
