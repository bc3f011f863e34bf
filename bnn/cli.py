"""The `bnn` command: parses arguments, calls library functions, prints.

Each sub-command lives in its own module ``bnn/cmd_<name>.py`` (a dash in the name is an underscore
in the module's: ``serve-sim`` is ``bnn/cmd_serve_sim.py``) exposing ``add_parser(subparsers)``
(which registers the sub-command and sets ``func``) and a ``run(args)`` function returning an exit
code. Library errors (:class:`model.errors.BnnError`) become one line on stderr and exit status 1;
argument errors exit with status 2 (argparse's convention); Ctrl-C exits with 130 and SIGTERM
with 143, each after one line and the cleanup of whatever was running.

Status lines (a slow step starting, a fallback and why) come from the libraries on the ``bnn``
logger; while a sub-command runs they go to stderr as ``bnn <command>: <text>``, so that stdout
holds only results (one JSON object with ``--json``).
"""

import argparse
import importlib
import logging
import os
import signal
import sys

from model.errors import BnnError

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

COMMANDS = ["train", "eval", "demo", "sim", "build", "serve-sim", "load", "stream", "check", "import", "export"]


class Terminated(BaseException):
    """SIGTERM arrived; raised like KeyboardInterrupt, so that cleanup code runs on the way out."""


def _terminate(_signal, _frame):
    raise Terminated


class StatusLines(logging.Handler):
    """Prints each record of the ``bnn`` logger on stderr as ``bnn <command>: <text>``."""

    def __init__(self, command):
        super().__init__(logging.INFO)
        self.command = command

    def emit(self, record):
        print(f"bnn {self.command}: {record.getMessage()}", file=sys.stderr, flush=True)


def _stdout_closed():
    """True if stdout's reader has gone (its pipe is broken); stdout then points to /dev/null, so
    that Python's own flush at exit does not fail again."""
    try:
        sys.stdout.flush()
        return False
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return True


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bnn", description="Binary neural networks on FPGAs: train and fold a model, evaluate it, "
                                "simulate its inference engine cycle by cycle, build a bitstream for a "
                                "board, and stream a data set through a board or a simulated board.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bnn.cmd_{name.replace('-', '_')}").add_parser(sub)
    return parser


def use_one_blas_thread():
    """Put BLAS on one thread, whatever the environment asks: a trained model must not depend on the
    machine's thread count (a product split across threads can sum in another order: issue 9 measured
    digits at 96.67% with two threads and 97.11% with one). Takes effect only before the program
    loads NumPy; on a busy 2-core machine one thread is also the faster setting."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"


def main(argv=None):
    use_one_blas_thread()
    args = build_parser().parse_args(argv)
    status, logger = StatusLines(args.command), logging.getLogger("bnn")
    logger.setLevel(logging.INFO)
    logger.addHandler(status)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args) or 0
    except BnnError as e:
        print(f"bnn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"bnn {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return 128 + signal.SIGPIPE  # the reader of stdout went away (`| head`): quietly, as a shell tool does
    finally:
        signal.signal(signal.SIGTERM, previous)
        logger.removeHandler(status)
