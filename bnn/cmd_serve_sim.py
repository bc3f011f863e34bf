"""`bnn serve-sim`: a board's gateware simulated cycle by cycle, its serial line on a TCP socket."""

import signal
import sys
import threading

from host.port import split_address
from hw.boards import board as find_board
from hw.plan import WEIGHT_STORES, engine_folding
from model.errors import BnnError
from model.modelfile import load_model
from sim.board import simulated_board
from sim.cxxrtl import StreamSimulator
from sim.netlist import netlist_board
from sim.serve import BoardServer

from .common import emit_json, positive_float, positive_int

def add_parser(sub):
    p = sub.add_parser("serve-sim", help="simulate a board with CXXRTL and serve its serial line on TCP",
                       description="Simulate a board's gateware (the serial link and the engine, UART "
                                   "bit timing included) cycle by cycle, compiled with CXXRTL, and "
                                   "expose its serial line as a TCP socket: a host opens it as "
                                   "socket://HOST:PORT (pyserial), e.g. `bnn stream --port "
                                   "socket://127.0.0.1:PORT`. Serves one client at a time (a connection that "
                                   "comes while another is served is closed at once) and keeps the board's "
                                   "state between clients. Prints `listening on "
                                   "HOST:PORT` on stdout once ready; runs until interrupted (Ctrl-C, "
                                   "SIGTERM), then prints a summary on stderr and exits with 130 or 143. With --netlist, the gates "
                                   "`bnn build` synthesized for the bitstream are simulated instead of "
                                   "the Amaranth design.")
    p.add_argument("--board", metavar="NAME", help="board to simulate (see bnn build --list-boards)")
    p.add_argument("--model", metavar="FILE", help="model file written by `bnn train`")
    p.add_argument("--netlist", metavar="DIR",
                   help="simulate the synthesized link core of the `bnn build` folder DIR (its board, "
                        "model, folding, clock and line; instead of --board, --model and the engine options)")
    p.add_argument("--listen", required=True, metavar="HOST:PORT",
                   help="TCP address to serve on, e.g. 127.0.0.1:5000; port 0 picks a free port")
    p.add_argument("--pe", type=positive_int, metavar="P",
                   help="processing elements (with --simd; default: the fastest folding that fits the board)")
    p.add_argument("--simd", type=positive_int, metavar="S", help="input lanes per PE, a multiple of P (with --pe)")
    p.add_argument("--clock-mhz", type=positive_float, metavar="F",
                   help="engine clock (default: the board's); the simulated board runs at what its PLL makes of it")
    p.add_argument("--baud", type=positive_int, help="serial line rate (default 3000000)")
    p.add_argument("--weights", choices=WEIGHT_STORES,
                   help="where the weights live, as for bnn build (default auto; SPRAM: the board starts with no model)")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object ({"listening": "HOST:PORT", ...}) instead of the listening line')
    p.set_defaults(func=run)


def parse_listen(text):
    """``(host, port)`` of ``HOST:PORT`` (``[HOST]:PORT`` for IPv6; :func:`host.port.split_address`);
    raises BnnError."""
    try:
        return split_address(text)
    except ValueError as e:
        raise BnnError(f"--listen must be HOST:PORT (port 0: any free one), not {text!r}: {e}") from None


def _say(message):
    print(f"bnn serve-sim: {message}", file=sys.stderr, flush=True)


# the options that choose what to simulate, which a --netlist build folder fixes
_DESIGN_OPTIONS = {"board": "--board", "model": "--model", "pe": "--pe", "simd": "--simd", "clock_mhz": "--clock-mhz",
                   "baud": "--baud", "weights": "--weights"}


def _simulated(args):
    """``(board, facts)``: the :class:`sim.board.SimulatedBoard` or :class:`sim.netlist.NetlistBoard`
    the arguments name, and what to report of it."""
    if args.netlist is not None:
        given = [flag for name, flag in _DESIGN_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            raise BnnError(f"--netlist simulates a build as it was made: drop {', '.join(given)}")
        simulated = netlist_board(args.netlist)
        return simulated, {"netlist": args.netlist, "arch": None}
    if args.board is None or args.model is None:
        raise BnnError("give --board and --model (or --netlist with a `bnn build` folder)")
    board = find_board(args.board)
    model = load_model(args.model)
    pe, simd = engine_folding(model, board, pe=args.pe, simd=args.simd, weights=args.weights or "auto")
    simulated = simulated_board(model, board, pe=pe, simd=simd, clock_mhz=args.clock_mhz, baud=args.baud or 3_000_000,
                                weights=args.weights or "auto")
    return simulated, {"netlist": None, "model": str(args.model), "arch": model.arch}


def run(args):
    host, port = parse_listen(args.listen)
    simulated, facts = _simulated(args)
    board, pe, simd = simulated.board, simulated.pe, simulated.simd
    clock_hz, divisor = simulated.clock_hz, simulated.divisor
    server = BoardServer(host, port)  # before the build: an address in use fails at once
    try:
        facts.update({"board": board.name, "device": board.device.name, "pe": pe, "simd": simd,
                      "tree_stages": board.tree_stages, "clock_hz": clock_hz,
                      "baud": simulated.baud, "baud_error": simulated.baud_error, "uart_divisor": divisor,
                      "timeout_cycles": simulated.timeout_cycles, "idle_cycles": simulated.idle_cycles,
                      "quiet_cycles": simulated.quiet_cycles, "cycles_per_frame": simulated.cycles_per_frame,
                      "weights_in_spram": simulated.weights_in_spram})
        what = f"the netlist of {facts['netlist']}" if facts["netlist"] else facts["arch"]
        _say(f"{board.name} ({board.device.name}): {what}, engine P x S = {pe} x {simd}, "
             f"{clock_hz / 1e6:.2f} MHz, UART {simulated.baud} baud ({simulated.baud_error:+.1%}, {divisor} cycles "
             f"per bit)" + (", weights in SPRAM (load a model first)" if simulated.weights_in_spram else ""))
        _say("building the simulated board...")
        library = simulated.compile()
        _say(f"simulated board {'built' if library.built else 'loaded from the cache'} "
             f"in {library.build_seconds:.1f} s")
        facts.update(build_seconds=library.build_seconds, built=library.built)
        with StreamSimulator(library) as simulator:
            stats, stopped_by = _serve(server, simulator, simulated.idle_cycles, simulated.quiet_cycles, facts,
                                       args.json)
    finally:
        server.close()
    seconds = stats.cycles / clock_hz
    refused = f" ({stats.refused} more refused while one was served)" if stats.refused else ""
    _say(f"stopped: {stats.clients} client{'s' * (stats.clients != 1)}{refused}, {stats.bytes_in} bytes in, "
         f"{stats.bytes_out} bytes out ({stats.bytes_dropped} dropped), {stats.cycles} cycles simulated "
         f"({seconds * 1e3:.1f} ms of board time)")
    # stopped as every command is by a signal: 130 after Ctrl-C, 143 after SIGTERM (bnn.cli)
    return 0 if stopped_by is None else 128 + stopped_by


def _serve(server, simulator, window, quiet, facts, as_json):
    """Serve until SIGINT or SIGTERM; return the stats and the signal's number (None if none came)."""
    stop = threading.Event()
    stopped_by = []

    def on_listening(_address):
        if as_json:
            emit_json({"listening": server.address_text, **facts})
        else:
            print(f"listening on {server.address_text}")
        sys.stdout.flush()

    def on_signal(number, _frame):
        stopped_by.append(number)
        stop.set()

    handlers = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = server.run(simulator, idle_cycles=window, quiet_cycles=quiet, stop=stop, on_listening=on_listening,
                           log=_say)
        return stats, stopped_by[0] if stopped_by else None
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
