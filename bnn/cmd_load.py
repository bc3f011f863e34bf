"""`bnn load`: write a model into a board over the serial link, without a new bitstream.

Also the link arguments and steps that `bnn stream` shares.
"""

import sys
import time

from tqdm import tqdm

from host.board import compile_for_board
from host.link import Link
from layout.images import model_id
from model.modelfile import load_model

from .common import emit_json, non_negative_int, positive_float, positive_int

DEFAULT_BAUD = 3_000_000   # what `bnn build` builds by default


def add_link_arguments(parser, *, baud_default=DEFAULT_BAUD, baud_help=None):
    """``--port``, ``--baud``, ``--timeout`` and ``--retries``."""
    parser.add_argument("--port", required=True, metavar="URL",
                        help="serial device (/dev/ttyUSB1) or pyserial URL (socket://127.0.0.1:PORT for bnn serve-sim)")
    parser.add_argument("--baud", type=positive_int, default=baud_default, metavar="B",
                        help=baud_help or f"serial line rate the board was built for (default {DEFAULT_BAUD})")
    parser.add_argument("--timeout", type=positive_float, metavar="S",
                        help="seconds to wait for an answer (default 30 for socket://, a simulated board; "
                             "2 for a serial device)")
    parser.add_argument("--retries", type=non_negative_int, default=3, metavar="R",
                        help="times a request is sent again after an error or a timeout (default 3)")


def open_link(args):
    return Link.open(args.port, baud=args.baud, timeout=args.timeout, retries=args.retries)


def describe_board(identity):
    """The board's identity as a dict for the JSON report."""
    return {"pe": identity.pe, "simd": identity.simd, "input_bits": identity.input_bits, "conv": bool(identity.conv),
            "gather_rows": identity.gather_rows if identity.conv else None,
            "clock_hz": identity.clock_hz, "baud": identity.baud, "gateware": identity.gateware,
            "weights_in_spram": bool(identity.weights_in_spram), "model_loaded": identity.model_loaded,
            "model_id": identity.model_id.hex() if identity.model_loaded else None}


def board_summary(url, identity):
    """One line: the engine, its clock and baud rate, and whether it holds a model."""
    held = f"holds model {identity.model_id.hex()[:16]}" if identity.model_loaded else "holds no model"
    rows = identity.gather_rows
    kind = f" with convolutions (slices from up to {rows} window row{'s' if rows > 1 else ''})" if identity.conv else ""
    return (f"{url}: engine P x S = {identity.pe} x {identity.simd}{kind}, {identity.input_bits}-bit input, "
            f"{identity.clock_hz / 1e6:.2f} MHz, {identity.baud} baud, gateware {identity.gateware}; {held}")


def load_onto_board(link, compiled, identity):
    """Load ``compiled`` with a progress bar on a terminal; returns the board's new identity, the
    bytes of load data and the seconds taken."""
    start = time.perf_counter()
    sizes = []
    with tqdm(desc="load", unit="B", unit_scale=True, file=sys.stderr, disable=None, leave=False) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
            sizes[:] = [total]
        loaded = link.load(compiled, identity, progress=progress)
    return loaded, sizes[0] if sizes else 0, time.perf_counter() - start


def add_parser(sub):
    p = sub.add_parser("load", help="load a model into a board over the serial link",
                       description="Write a model file into a board's memories over the serial link "
                                   "(any model that fits the sizes the board was built for), then check "
                                   "that the board reports it.")
    add_link_arguments(p)
    p.add_argument("--model", required=True, metavar="FILE", help="model file written by `bnn train`")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args):
    model = load_model(args.model)
    with open_link(args) as link:
        identity = link.identify()
        if not args.json:
            print(board_summary(args.port, identity))
        compiled = compile_for_board(model, identity)
        loaded, size, seconds = load_onto_board(link, compiled, identity)
        report = {"port": args.port, "model": str(args.model), "arch": model.arch,
                  "model_id": model_id(compiled).hex(), "bytes": size, "seconds": seconds,
                  "board": describe_board(loaded), **link.stats.as_dict()}
    if args.json:
        emit_json(report)
    else:
        print(f"loaded {args.model} ({model.arch}): {size} bytes in {seconds:.2f} s, "
              f"model id {report['model_id'][:16]}, {report['retries']} retries")
    return 0
