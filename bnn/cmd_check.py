"""`bnn check`: bring up a board just programmed, one step at a time, each a pass/fail line with what it
measured and, on failure, a line of what to try.

The steps: open the port; IDENTIFY; STATUS (the counters before); load a model (the user's, or a
small random one that fits the board's engine); stream a few random frames and compare every class
with the golden model; STATUS again, whose differences must be the frames sent and no line errors.
A step that cannot run once an earlier one failed is reported as skipped.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from host.board import compile_for_board
from host.link import (BusyError, ConnectionLostError, IdentityError, Link, LinkError, NoAnswerError, PortError,
                       counters_delta)
from host.payloads import input_frame
from host.stream import percentiles_ms
from layout.images import model_id
from layout.params import CompileError
from model.errors import BnnError
from model.golden import infer
from model.layers import Dense
from model.modelfile import load_model
from model.random_models import random_conv_model, random_images

from .cmd_load import DEFAULT_BAUD, add_link_arguments, board_summary, describe_board, load_onto_board
from .common import emit_json, non_negative_int, path_argument, positive_int

DEFAULT_FRAMES = 20
TEST_MODEL_CLASSES = 10
STEP_NAMES = ("open", "identify", "status_before", "load", "stream", "status_after")

# what a counter that moved during the check says about the line
COUNTER_HINTS = {
    "framing_errors": "bytes with a broken stop bit: a wrong baud rate, or a USB-serial chip that cannot carry it",
    "overruns": "bytes came faster than the board takes them: a wrong baud rate, or the USB-serial chip's",
    "bad_crc": "requests arrived corrupted: noise on the line (cable, USB hub, a loose ground)",
    "bad_length": "request headers arrived corrupted: noise on the line",
    "unknown_command": "request headers arrived corrupted: noise on the line",
    "timeouts": "requests stopped half-way for longer than the board waits: bytes lost on the line, or a "
                "USB-serial chip or hub that holds them back",
    "skipped_bytes": "bytes outside any request: noise on the line, or a wrong baud rate",
}


def small_model_for_board(identity, *, seed=0):
    """A small random fully connected model that fits the engine ``identity`` describes, for checking
    a board (`bnn check`): ``(model, compiled)``, the same for the same identity and ``seed``.

    It takes the board's input width and, if it fits, its whole frame (``input_words * simd``
    pixels; else 64 or 16), through one hidden layer of 32 neurons or fewer (none if the board holds
    one layer only) to up to :data:`TEST_MODEL_CLASSES` classes: the first of these shapes that fits
    the board's memories and widths. Raises :class:`CompileError` if none does.
    """
    capacity = identity.input_words * identity.simd
    classes = max(2, min(TEST_MODEL_CLASSES, identity.score_count))
    inputs = sorted({min(capacity, n) for n in (capacity, 64, 16)}, reverse=True)
    hidden = [[n] for n in (32, 16, 8, 4) if identity.max_layers >= 2] + [[]]
    last = None
    for n_in in inputs:
        for layers in hidden:
            # hidden thresholds calibrated on uniform random images, the kind `bnn check` streams:
            # the classes vary from frame to frame
            model = random_conv_model((n_in,), [*map(Dense, layers), Dense(classes)],
                                      input_bits=identity.input_bits, seed=seed)
            try:
                return model, compile_for_board(model, identity)
            except CompileError as e:
                last = e
    raise CompileError(f"no small test model fits the board's engine ({last})")


def _dead(error):
    """True if ``error`` (a LinkError) says the board stopped answering or the port went away: no
    further request is then worth its timeout."""
    return isinstance(error, (NoAnswerError, ConnectionLostError))


class CheckError(BnnError):
    """A step of the check failed: ``detail`` what was measured, ``hint`` what to try."""

    def __init__(self, detail, hint, **values):
        super().__init__(detail)
        self.detail, self.hint, self.values = detail, hint, values


@dataclass
class Step:
    name: str
    ok: bool | None = None          # None: skipped
    detail: str = ""
    hint: str | None = None
    note: str | None = None
    values: dict = field(default_factory=dict)

    def as_dict(self):
        return {"name": self.name, "ok": self.ok, "skipped": self.ok is None, "detail": self.detail,
                "hint": self.hint, "note": self.note, "values": self.values}

    def lines(self):
        mark = {True: "pass", False: "FAIL", None: "skip"}[self.ok]
        lines = [f"{mark}  {self.name.replace('_', ' '):<15}{self.detail}"]
        if self.hint:
            lines.append(f"{'':21}try: {self.hint}")
        if self.note:
            lines.append(f"{'':21}note: {self.note}")
        return lines


def add_parser(sub):
    p = sub.add_parser(
        "check", help="bring up a board just programmed: link, identity, a model, frames, counters",
        description="Check a board over its serial line, step by step: open the port, IDENTIFY, read the "
                    "counters (STATUS), load a model (--model, or a small random model that fits the "
                    "board's engine), stream --frames random frames and compare every class with the "
                    "golden model, then read the counters again: they must have counted exactly the "
                    "frames sent and no line error. Prints a pass/fail line per step with what it "
                    "measured and, on failure, what to try; steps that cannot run after a failure are "
                    "skipped. Exits with status 0 if every step passed, 1 if one failed. The board keeps "
                    "the model loaded: load your own again with `bnn load`.")
    add_link_arguments(p, baud_default=None,
                       baud_help=f"serial line rate the bitstream was built for (default: --build's, "
                                 f"else {DEFAULT_BAUD}, bnn build's default)")
    p.add_argument("--build", type=path_argument, metavar="DIR",
                   help="the `bnn build` folder of the bitstream on the board: its baud rate (build.json) "
                        "is the default --baud and is named in the hints")
    p.add_argument("--model", type=path_argument, metavar="FILE",
                   help="load this model file (it must fit the board's engine, as for bnn load) instead "
                        "of a small random model made to fit it")
    p.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, metavar="N",
                   help=f"random frames to stream and check against the golden model (default {DEFAULT_FRAMES})")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help="seed of the random test model and frames (default 0): the same seed, the same "
                        "model and frames")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (the steps with name, ok, detail, hint) instead of the lines")
    p.set_defaults(func=run)


def build_baud(build_dir):
    """The baud rate recorded in ``build_dir/build.json``; raises BnnError."""
    path = os.path.join(build_dir, "build.json")
    try:
        with open(path) as f:
            baud = json.load(f)["baud"]
    except FileNotFoundError:
        raise BnnError(f"no build.json in {build_dir}: --build takes a `bnn build` output folder") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BnnError(f"cannot read the baud rate from {path}: {e}") from None
    if not isinstance(baud, int) or baud <= 0:
        raise BnnError(f"{path} records no baud rate (baud: {baud!r})")
    return baud


class Check:
    """The steps, run in order against one port; :attr:`steps` holds their outcomes."""

    def __init__(self, args, *, baud, build_baud, model, say):
        self.args, self.baud, self.build_baud, self.model, self.say = args, baud, build_baud, model, say
        self.steps = []
        self.link = self.identity = self.loaded_model = None
        self.before = None
        self.frames_sent = 0
        self.link_dead = False      # the link stopped answering: no further request is worth its timeout

    # -- running

    def run(self):
        try:
            for name in STEP_NAMES:
                step = Step(name)
                reason = self._blocked(name)
                if reason:
                    step.detail = f"not run: {reason}"
                else:
                    try:
                        step.detail, step.values, step.note = getattr(self, f"_{name}")()
                        step.ok = True
                    except CheckError as e:
                        step.ok, step.detail, step.hint, step.values = False, e.detail, e.hint, e.values
                self.steps.append(step)
                self.say(step)
        finally:
            if self.link is not None:
                self.link.close()
        return all(step.ok for step in self.steps)

    def _passed(self, name):
        return any(step.name == name and step.ok for step in self.steps)

    def _blocked(self, name):
        """Why step ``name`` cannot run, or None."""
        needs = {"identify": "open", "status_before": "identify", "load": "status_before", "stream": "load",
                 "status_after": "status_before"}
        if name in needs and not self._passed(needs[name]):
            failed = [step.name for step in self.steps if step.ok is False]
            return f"{failed[0].replace('_', ' ')} failed"
        if name == "status_after" and self.link_dead:
            return "the board stopped answering"
        return None

    # -- hints

    def _rate_hint(self):
        if self.build_baud is not None:
            if self.build_baud != self.baud:
                return f"the build in {self.args.build} used --baud {self.build_baud}, not {self.baud}"
            return f"the build in {self.args.build} used --baud {self.baud}, as here"
        return (f"bnn build's default is {DEFAULT_BAUD}; its report says `UART <rate> baud`, or pass "
                f"--build DIR to read it from build.json")

    def _line_hint(self):
        return (f"the USB-serial chip may not carry {self.identity.baud} baud (bnn build --list-boards names "
                f"the rates each board's chip carries): rebuild with a lower --baud if the board supports "
                f"one; or try another cable or USB port")

    # -- the steps: each returns (detail, values, note) or raises CheckError

    def _open(self):
        port = self.args.port
        try:
            self.link = Link.open(port, baud=self.baud, timeout=self.args.timeout, retries=self.args.retries)
        except PortError as e:
            raise CheckError(f"could not open {port}: {e.reason}", e.hint) from None
        return (f"{port} opened at {self.baud} baud, answers awaited {self.link.timeout:g} s",
                {"baud": self.baud, "timeout": self.link.timeout}, None)

    def _identify(self):
        link = self.link
        start = time.perf_counter()
        try:
            self.identity = link.identify()
        except IdentityError as e:
            raise CheckError(str(e), "the bitstream comes from another version of bnn-fpga than this host: "
                                     "build and program it with this version (bnn build), or use the host "
                                     "of its version") from None
        except BusyError as e:
            raise CheckError(str(e), "wait for the other client (a bnn stream, load or check) to finish, or "
                                     "start another bnn serve-sim on another port") from None
        except LinkError as e:
            self.link_dead = True
            skipped, broken = link.skipped_bytes
            values = {"heard": link.heard, "skipped_bytes": skipped, "broken_frames": broken,
                      "errors": dict(link.stats.errors)}
            if isinstance(e, ConnectionLostError):
                raise CheckError(str(e), "the port went away: is the board still plugged in (the simulated "
                                         "board still running)?", **values) from None
            if not link.heard:
                raise CheckError(f"nothing heard within {link.timeout:g} s",
                                 f"is the bitstream programmed (e.g. iceprog top.bin)? is {self.baud} the baud "
                                 f"rate it was built with ({self._rate_hint()})? is {self.args.port} the "
                                 f"board's UART?", **values) from None
            if link.stats.errors:
                answers = ", ".join(f"{name} x{n}" for name, n in sorted(link.stats.errors.items()))
                raise CheckError(f"the board answers, never OK: {answers}",
                                 "its requests arrive corrupted: noise on the line, or a baud rate slightly "
                                 "off; try another cable or USB port, or a bitstream built for a lower --baud",
                                 **values) from None
            raise CheckError(f"heard garbage, no answer: {skipped} bytes outside frames, {broken} broken frames",
                             f"a wrong baud rate: {self.baud} is not the bitstream's ({self._rate_hint()})",
                             **values) from None
        milliseconds = 1e3 * (time.perf_counter() - start)
        identity = self.identity
        detail = board_summary(self.args.port, identity)[len(self.args.port) + 2:]
        detail += f"; protocol {identity.protocol}, answered in {milliseconds:.1f} ms"
        note = None
        if identity.baud != self.baud and not self.args.port.startswith("socket://"):
            note = f"the board reports {identity.baud} baud; the port was opened at {self.baud}"
        return detail, {"board": describe_board(identity), "milliseconds": milliseconds}, note

    def _status_before(self):
        try:
            self.before = self.link.status()
        except LinkError as e:
            self.link_dead = True
            raise CheckError(str(e), "the board answers IDENTIFY but not STATUS: power-cycle or reprogram "
                                     "it and check again") from None
        counters = ", ".join(f"{name} {value}" for name, value in self.before.items())
        return f"counters since power-up or the last reset: {counters}", {"counters": self.before}, None

    def _load(self):
        identity, args = self.identity, self.args
        if self.model is not None:
            model, what = self.model, f"{args.model} ({self.model.arch})"
            try:
                compiled = compile_for_board(model, identity)
            except CompileError as e:
                raise CheckError(str(e), f"this bitstream's engine cannot run {args.model}: build one for it "
                                         f"(bnn build --model {args.model}), or check without --model (a "
                                         f"small model made to fit)") from None
        else:
            try:
                model, compiled = small_model_for_board(identity, seed=args.seed)
            except CompileError as e:
                raise CheckError(str(e), "the board reports sizes no small model fits: the bitstream and this "
                                         "host may be from different versions") from None
            what = f"test model {model.arch} (random, seed {args.seed})"
        before = (f"model {identity.model_id.hex()[:16]}" if identity.model_loaded else "no model")
        try:
            self.identity, size, seconds = load_onto_board(self.link, compiled, identity)
        except LinkError as e:
            self.link_dead = _dead(e)
            raise CheckError(str(e), f"loads fail on the line: {self._line_hint()}") from None
        self.loaded_model = model
        ident = model_id(compiled).hex()
        detail = f"{what}: {size} bytes in {seconds:.2f} s, model id {ident[:16]} (held {before} before)"
        note = None
        if self.model is None:
            restore = "" if identity.weights_in_spram else " (reprogramming restores the bitstream's own)"
            note = (f"the board now holds this test model: load yours again with "
                    f"`bnn load --port {args.port} --model FILE`{restore}")
        values = {"model": str(args.model) if self.model is not None else None, "arch": model.arch,
                  "test_model": self.model is None, "seed": args.seed if self.model is None else None,
                  "model_id": ident, "bytes": size, "seconds": seconds}
        return detail, values, note

    def _stream(self):
        model, link, count = self.loaded_model, self.link, self.args.frames
        images = random_images(count, model.input.size, seed=self.args.seed)
        expected = infer(model, images).classes
        frames = [input_frame(model, image) for image in images]
        answers = np.full(count, -1, dtype=np.int64)
        requests, retries, latencies = link.stats.requests, link.stats.retries, len(link.stats.latencies)
        start = time.perf_counter()
        try:
            for index, answer in link.infer(frames):
                answers[index] = -1 if answer is None else answer
        except LinkError as e:
            self.link_dead = _dead(e)
            if "holds no model" in str(e):
                raise CheckError(str(e), "the board lost the model just loaded (a LOAD corrupted on the line "
                                         "marks it as holding none): check again") from None
            raise CheckError(str(e), f"frames were lost: {self._line_hint()}") from None
        finally:
            self.frames_sent = link.stats.requests - requests     # one frame per INFER request
        seconds = time.perf_counter() - start
        failed = int(np.sum(answers < 0))
        mismatched = np.flatnonzero((answers >= 0) & (answers != expected))
        retried = link.stats.retries - retries
        latency = percentiles_ms(link.stats.latencies[latencies:])
        values = {"frames": count, "answered": count - failed, "mismatches": len(mismatched),
                  "mismatched_frames": mismatched[:10].tolist(), "failed": failed, "retries": retried,
                  "classes_seen": len(set(answers[answers >= 0].tolist())), "seconds": seconds,
                  "frames_per_second": (count - failed) / seconds if seconds > 0 else 0.0,
                  "latency_ms": latency}
        detail = (f"{count} random frames: {count - failed} answered, {len(mismatched)} mismatches with the "
                  f"golden model, {failed} failed, {retried} retries; {values['classes_seen']} different "
                  f"classes, {values['frames_per_second']:.0f} frames/s")
        if latency["p50"] is not None:
            detail += f", latency p50 {latency['p50']:.2f} ms"
        if failed or retried:
            raise CheckError(detail, f"frames were lost or corrupted: {self._line_hint()}", **values)
        if len(mismatched):
            first = ", ".join(map(str, values["mismatched_frames"]))
            raise CheckError(detail + f" (first: {first})",
                             "the answers arrive intact but differ from the golden model: check that the build "
                             "met timing (bnn build reports Fmax against the clock) and run bnn build --verify",
                             **values)
        return detail, values, None

    def _status_after(self):
        try:
            after = self.link.status()
        except LinkError as e:
            raise CheckError(str(e), f"the board stopped answering STATUS: {self._line_hint()}") from None
        delta = counters_delta(self.before, after)
        sent = self.frames_sent
        values = {"counters": after, "delta": delta, "frames_sent": sent}
        detail = ", ".join(f"{name} +{n}" + (f" ({sent} sent)" if name == "frames" else "")
                           for name, n in delta.items())
        groups = {}                 # hint -> the counters that moved for its reason
        for name, hint in COUNTER_HINTS.items():
            if delta[name]:
                groups.setdefault(hint, []).append(f"{name} +{delta[name]}")
        hints = [f"{', '.join(moved)}: {hint}" for hint, moved in groups.items()]
        if delta["frames"] != sent:
            hints.insert(0, f"the board computed {delta['frames']} frames of the {sent} sent: frames were lost "
                            f"on the line")
        if hints:
            raise CheckError(detail, "; ".join(hints), **values)
        return detail, values, None


def run(args):
    built = build_baud(args.build) if args.build else None
    baud = args.baud or built or DEFAULT_BAUD
    model = load_model(args.model) if args.model else None    # a bad file is an error before any step

    def say(step):
        if not args.json:
            print("\n".join(step.lines()), flush=True)

    check = Check(args, baud=baud, build_baud=built, model=model, say=say)
    ok = check.run()
    passed = sum(1 for step in check.steps if step.ok)
    failed = [step.name for step in check.steps if step.ok is False]
    if args.json:
        emit_json({"port": args.port, "baud": baud, "ok": ok, "passed": passed,
                   "steps": [step.as_dict() for step in check.steps],
                   "board": describe_board(check.identity) if check.identity else None})
    elif ok:
        print(f"all {passed} steps passed")
    if not ok:
        skipped = sum(1 for step in check.steps if step.ok is None)
        print(f"bnn check: failed: {', '.join(name.replace('_', ' ') for name in failed)} ({passed} of "
              f"{len(check.steps)} steps passed, {skipped} skipped)", file=sys.stderr)
    return 0 if ok else 1
