"""`bnn stream`: classify a data set split on a board over the serial link, checked against the golden model."""

import argparse
import sys

from tqdm import tqdm

from host.stream import stream_images
from layout.protocol import MAX_INFER_FRAMES
from model.modelfile import load_model

from .cmd_load import add_link_arguments, board_summary, describe_board, open_link
from .common import add_dataset_arguments, dataset_for_model, emit_json, positive_int, split_images


def frames_per_request(text):
    """argparse type: 1..MAX_INFER_FRAMES."""
    value = positive_int(text)
    if value > MAX_INFER_FRAMES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_INFER_FRAMES}, not {value}")
    return value


def add_parser(sub):
    p = sub.add_parser("stream", help="classify images on a board over the serial link",
                       description="Identify the board, load the model if the board holds another one, "
                                   "stream a data set split with several frames in flight and check every "
                                   "answer against the golden model. Exits with status 1 on any mismatch "
                                   "or failed frame.")
    add_link_arguments(p)
    p.add_argument("--model", required=True, metavar="FILE",
                   help="model file written by `bnn train` (loaded if the board holds another model)")
    add_dataset_arguments(p)
    p.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")
    p.add_argument("--count", type=positive_int, metavar="N", help="only the first N images")
    p.add_argument("--frames-per-request", type=frames_per_request, default=1, metavar="K",
                   help=f"frames per INFER request, 1..{MAX_INFER_FRAMES} (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args):
    model = load_model(args.model)
    data = dataset_for_model(args, model)
    images, labels = split_images(args, data)
    with open_link(args) as link:
        if not args.json:
            print(board_summary(args.port, link.identify()))
        with tqdm(total=len(images), desc="bnn stream", unit="frame", file=sys.stderr, disable=None) as bar, \
                tqdm(desc="load", unit="B", unit_scale=True, file=sys.stderr, disable=None, leave=False) as load_bar:
            def load_progress(done, total):
                load_bar.total = total
                load_bar.update(done - load_bar.n)
            report = stream_images(link, model, images, labels, frames_per_request=args.frames_per_request,
                                   progress=lambda: bar.update(1), load_progress=load_progress)
    identity = report.pop("identity")
    report = {"port": args.port, "model": str(args.model), "arch": model.arch, "input_bits": model.input.bits,
              "dataset": data.name, "split": args.split, "board": describe_board(identity), **report}
    loaded, fps, bound = report["loaded"], report["frames_per_second"], report["link_bound_frames_per_second"]
    correct, frames = report["correct"], report["frames"]
    if loaded and not args.json:
        print(f"loaded {args.model} ({model.arch}): {loaded['bytes']} bytes in {loaded['seconds']:.2f} s")
    if args.json:
        emit_json(report)
    else:
        latency = report["latency_ms"]
        errors = ", ".join(f"{name} {n}" for name, n in sorted(report["errors"].items())) or "none"
        delta = ", ".join(f"{name} +{n}" for name, n in report["counters"]["delta"].items())
        print(f"{args.model}: {model.arch}, {model.input.bits}-bit input, {data.name} {args.split} split, "
              f"{frames} frames")
        print(f"accuracy {100 * report['accuracy']:.2f}% ({correct}/{frames}), "
              f"{report['mismatches']} mismatches with the golden model, {report['failed']} failed frames")
        simulated = " (wall clock: a board simulated by bnn serve-sim runs slower than a real one)" \
            if args.port.startswith("socket://") else ""
        print(f"{fps:.0f} frames/s, {100 * report['link_fraction']:.1f}% of the link's bound of {bound:.0f} "
              f"frames/s at {identity.baud} baud ({args.frames_per_request} frame(s) per request){simulated}")
        if latency["p50"] is not None:
            print(f"latency p50 {latency['p50']:.2f} ms, p95 {latency['p95']:.2f} ms, p99 {latency['p99']:.2f} ms")
        print(f"{report['retries']} retries, {report['timeouts']} timeouts, {report['lost']} lost answers, "
              f"{report['ignored_responses']} ignored responses; error responses: {errors}")
        print(f"board counters: {delta}")
    if report["mismatches"] or report["failed"]:
        print(f"bnn stream: {report['mismatches']} mismatches with the golden model (first: "
              f"{report['mismatched_frames']}), {report['failed']} failed frames (first: {report['failed_frames']})",
              file=sys.stderr)
        return 1
    return 0
