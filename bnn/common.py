"""Argument and output helpers shared by the sub-commands."""

import argparse
import json
import os
import sys

from model.datasets import DATASETS, load_dataset
from model.errors import BnnError, DatasetError


def add_dataset_arguments(parser, default=None):
    """``--dataset`` and ``--data``; ``default`` None means "the one recorded in the model file"."""
    helptext = "data set" + (f" (default: {default})" if default else " (default: the model's own)")
    parser.add_argument("--dataset", choices=DATASETS, default=default, help=helptext)
    parser.add_argument("--data", metavar="DIR",
                        help="folder with IDX files (default for fashion-mnist: /usr/share/datasets/fashion-mnist)")


def dataset_for_model(args, model):
    """Load the data set named on the command line, or the model's own, and check it fits the model."""
    name = args.dataset or model.metadata.get("dataset")
    if name is None:
        raise DatasetError("the model does not record its data set; pass --dataset")
    data = load_dataset(name, args.data)
    if data.input_size != model.input.size:
        raise DatasetError(f"data set {name!r} has {data.input_size} inputs per image "
                           f"but the model takes {model.input.size}")
    if data.classes > model.classes:
        raise DatasetError(f"data set {name!r} has {data.classes} classes but the model has {model.classes}")
    return data


def emit_json(obj):
    """Print exactly one JSON object on stdout."""
    json.dump(obj, sys.stdout, indent=None, sort_keys=True)
    sys.stdout.write("\n")


def int_at_least(minimum, maximum=None):
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum``, if given)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, not {value}")
        return value
    return parse


def path_argument(text):
    """argparse type: a non-empty path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names nothing")
    return text


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def split_images(args, data):
    """``(images, labels)`` of ``--split`` (test or train), the first ``--count`` if given."""
    images = data.test_images if args.split == "test" else data.train_images
    labels = data.test_labels if args.split == "test" else data.train_labels
    if args.count is not None:
        images, labels = images[:args.count], labels[:args.count]
    return images, labels


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def check_output_paths(paths):
    """Make sure each path can be written (its folder created if needed, the path not a folder),
    before the work that writes it; raise :class:`BnnError` with a one-line reason otherwise."""
    for path in paths:
        if os.path.isdir(path):
            raise BnnError(f"cannot write {path!r}: it is a folder, not a file name")
        folder = os.path.dirname(path) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise BnnError(f"cannot create the folder {folder!r} for {path!r}: {e.strerror}") from None
        if not os.access(folder, os.W_OK):
            raise BnnError(f"cannot write {path!r}: the folder {folder!r} is not writable")
