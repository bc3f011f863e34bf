"""`bnn stream`: classify a data set split on a board over the serial link, checked against the golden model."""

import argparse
import sys
import time

import numpy as np
from tqdm import tqdm

from host import board
from host.board import compile_for_board
from host.link import counters_delta, input_frame
from host.protocol import MAX_INFER_FRAMES, frame_bytes, link_bound_fps
from model.golden import infer
from model.modelfile import load_model

from .cmd_load import add_link_arguments, board_summary, describe_board, load_onto_board, open_link
from .common import add_dataset_arguments, dataset_for_model, emit_json, positive_int


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


def percentiles_ms(latencies):
    if not latencies:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(latencies) * 1e3, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def run(args):
    model = load_model(args.model)
    data = dataset_for_model(args, model)
    images = data.test_images if args.split == "test" else data.train_images
    labels = data.test_labels if args.split == "test" else data.train_labels
    if args.count is not None:
        images, labels = images[:args.count], labels[:args.count]
    expected = infer(model, images).classes
    frames = [input_frame(model, image) for image in images]
    answers = np.full(len(images), -1, dtype=np.int64)   # -1: failed
    with open_link(args) as link:
        identity = link.identify()
        if not args.json:
            print(board_summary(args.port, identity))
        compiled = compile_for_board(model, identity)
        loaded = None
        if not (identity.model_loaded and identity.model_id == board.model_id(compiled)):
            identity, size, seconds = load_onto_board(link, compiled, identity)
            loaded = {"bytes": size, "seconds": seconds}
            if not args.json:
                print(f"loaded {args.model} ({model.arch}): {size} bytes in {seconds:.2f} s")
        before = link.status()
        start = time.perf_counter()
        with tqdm(total=len(frames), desc="bnn stream", unit="frame", file=sys.stderr, disable=None) as bar:
            for index, answer in link.infer(frames, frames_per_request=args.frames_per_request,
                                            reload=lambda: link.load(compiled, identity)):
                answers[index] = -1 if answer is None else answer
                bar.update(1)
        seconds = time.perf_counter() - start
        after = link.status()
        stats = link.stats

    failed = answers < 0
    mismatched = np.flatnonzero(~failed & (answers != expected))
    correct = int(np.sum(answers == labels))
    answered = int(np.sum(~failed))
    bound = link_bound_fps(identity.baud, frame_bytes(model.input.bits, model.input.size), args.frames_per_request)
    fps = answered / seconds if seconds > 0 else 0.0
    report = {
        "port": args.port, "model": str(args.model), "arch": model.arch, "input_bits": model.input.bits,
        "dataset": data.name, "split": args.split, "board": describe_board(identity), "loaded": loaded,
        "frames": len(frames), "answered": answered, "correct": correct,
        "accuracy": correct / len(frames) if len(frames) else 0.0,
        "mismatches": len(mismatched), "mismatched_frames": mismatched[:10].tolist(),
        "failed": int(failed.sum()), "failed_frames": np.flatnonzero(failed)[:10].tolist(),
        "seconds": seconds, "frames_per_second": fps, "frames_per_request": args.frames_per_request,
        "link_bound_frames_per_second": bound, "link_fraction": fps / bound,
        "latency_ms": percentiles_ms(stats.latencies),
        **stats.as_dict(),
        "counters": {"before": before, "after": after, "delta": counters_delta(before, after)},
    }
    if args.json:
        emit_json(report)
    else:
        latency = report["latency_ms"]
        errors = ", ".join(f"{name} {n}" for name, n in sorted(report["errors"].items())) or "none"
        delta = ", ".join(f"{name} +{n}" for name, n in report["counters"]["delta"].items())
        print(f"{args.model}: {model.arch}, {model.input.bits}-bit input, {data.name} {args.split} split, "
              f"{len(frames)} frames")
        print(f"accuracy {100 * report['accuracy']:.2f}% ({correct}/{len(frames)}), "
              f"{report['mismatches']} mismatches with the golden model, {report['failed']} failed frames")
        print(f"{fps:.0f} frames/s, {100 * report['link_fraction']:.1f}% of the link's bound of {bound:.0f} "
              f"frames/s at {identity.baud} baud ({args.frames_per_request} frame(s) per request)")
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
