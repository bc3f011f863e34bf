"""`bnn eval`: run a model file through the bit-exact golden model on a data set split."""

import time

import numpy as np

from model.golden import infer
from model.modelfile import load_model

from .common import add_dataset_arguments, dataset_for_model, emit_json, positive_int, split_images


def add_parser(sub):
    p = sub.add_parser("eval", help="evaluate a model file with the bit-exact golden model",
                       description="Evaluate a model file with the bit-exact integer golden model.")
    p.add_argument("--model", required=True, metavar="FILE", help="model file written by `bnn train`")
    add_dataset_arguments(p)
    p.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")
    p.add_argument("--count", type=positive_int, metavar="N", help="only the first N images")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def evaluate(model, images, labels):
    """Golden-model accuracy: a dict of counts, accuracy, per-class accuracy and timing."""
    start = time.perf_counter()
    result = infer(model, images)
    seconds = time.perf_counter() - start
    correct = result.classes == labels
    per_class = {int(c): float(np.mean(correct[labels == c])) for c in np.unique(labels)}
    return {
        "images": int(len(labels)),
        "correct": int(correct.sum()),
        "accuracy": float(correct.mean()) if len(labels) else 0.0,
        "per_class_accuracy": per_class,
        "seconds": seconds,
        "images_per_second": len(labels) / seconds if seconds > 0 else None,
    }


def run(args):
    model = load_model(args.model)
    data = dataset_for_model(args, model)
    images, labels = split_images(args, data)
    report = evaluate(model, images, labels)
    report.update(model=str(args.model), arch=model.arch, input_bits=model.input.bits,
                  dataset=data.name, split=args.split)
    if args.json:
        emit_json(report)
        return 0
    print(f"{args.model}: {model.arch}, {model.input.bits}-bit input, {data.name} {args.split} split")
    print(f"accuracy {100 * report['accuracy']:.2f}% ({report['correct']}/{report['images']}), "
          f"golden model {report['images_per_second']:.0f} images/s")
    return 0
