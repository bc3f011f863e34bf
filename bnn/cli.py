"""The `bnn` command: parses arguments, calls library functions, prints.

Each sub-command lives in its own module ``bnn/cmd_<name>.py`` (a dash in the name is an underscore
in the module's: ``serve-sim`` is ``bnn/cmd_serve_sim.py``) exposing ``add_parser(subparsers)``
(which registers the sub-command and sets ``func``) and a ``run(args)`` function returning an exit
code. Library errors (:class:`model.errors.BnnError`) become one line on stderr and exit status 1;
argument errors exit with status 2 (argparse's convention).
"""

import argparse
import importlib
import sys

from model.errors import BnnError

COMMANDS = ["train", "eval", "demo", "sim", "build", "serve-sim", "load", "stream"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bnn", description="Binary neural networks: train, fold, verify and run on FPGA.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bnn.cmd_{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except BnnError as e:
        print(f"bnn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bnn {args.command}: interrupted", file=sys.stderr)
        return 130
