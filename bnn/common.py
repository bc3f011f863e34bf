"""Argument and output helpers shared by the sub-commands."""

import argparse
import json
import sys
from fractions import Fraction

from model.datasets import DATASETS, load_dataset
from model.errors import DatasetError
from model.fileio import check_output_paths  # noqa: F401  (sub-commands import it from here)


def add_dataset_arguments(parser, default=None):
    """``--dataset`` and ``--data``; ``default`` None means "the one recorded in the model file"."""
    helptext = "data set" + (f" (default: {default})" if default else " (default: the model's own)")
    parser.add_argument("--dataset", choices=DATASETS, default=default, help=helptext)
    parser.add_argument("--data", metavar="DIR",
                        help="folder with IDX files (default for fashion-mnist: /usr/share/datasets/fashion-mnist)")


def dataset_for_model(args, model):
    """Load the data set named on the command line, or the model's own, and check it fits the model:
    as many pixels per image for a fully connected first layer, the same image shape (``(H, W, C)``,
    a data set's ``H x W`` image having one channel) for a convolution; no more classes."""
    name = args.dataset or model.metadata.get("dataset")
    if name is None:
        raise DatasetError("the model does not record its data set; pass --dataset")
    data = load_dataset(name, args.data)
    if model.is_dense:
        if data.input_size != model.input.size:
            raise DatasetError(f"data set {name!r} has {data.input_size} inputs per image "
                               f"but the model takes {model.input.size}")
    else:
        image = tuple(data.shape) if len(data.shape) == 3 else (*data.shape, 1)
        if image != model.input.map_shape:
            raise DatasetError(f"data set {name!r} has {' x '.join(map(str, image))} images "
                               f"but the model reads {' x '.join(map(str, model.input.map_shape))} maps")
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


def positive_fraction(text):
    """argparse type: a positive number or fraction, exactly (``1/255``, ``0.5``, ``1``)."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction such as 1/255, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value
