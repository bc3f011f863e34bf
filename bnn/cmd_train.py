"""``bnn train``: train a binary network (optionally distilled from a float teacher), fold it, save it.

The arguments of :class:`model.pipeline.TrainRequest`, run by :func:`model.pipeline.train_and_save`.
"""

import argparse
import dataclasses

from model import train
from model.ops import GRADS
from model.pipeline import (CONV_RECIPES, MIRROR_SAFE, RECIPES, TEACHER_HIDDEN, TrainRequest, summary_lines,
                            train_and_save)

from .common import emit_json, non_negative_int, path_argument


def _per_dataset(describe, recipes=RECIPES):
    """``describe(recipe)`` for each data set, those with equal values grouped: "digits 50; fashion-mnist, mnist 60"."""
    groups = {}
    for name, recipe in recipes.items():
        groups.setdefault(describe(recipe), []).append(name)
    return "; ".join(f"{', '.join(names)} {value}" for value, names in groups.items())


def _defaults(describe):
    """The defaults of fully connected and of convolutional networks, per data set."""
    return f"{_per_dataset(describe)}; conv nets: {_per_dataset(describe, CONV_RECIPES)}"


def _arch_pattern(hidden):
    return "-".join(["<inputs>", *map(str, hidden), "<classes>"])


def add_parser(subparsers):
    d = TrainRequest()
    p = subparsers.add_parser(
        "train", help="train a binary network, fold it and save the model file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a binary network (optionally distilled from a float teacher), fold it into an integer\n"
                    "model, check it against the golden model, and save it. The defaults of --arch, --epochs, --lr,\n"
                    "--grad, --shift, --flip, --ghost-batches and --teacher-shift depend on the data set, and all\n"
                    "but --arch on whether --arch is a convolutional network: they are the best recipe measured\n"
                    "for it, so 'bnn train --dataset fashion-mnist --teacher' trains the Fashion-MNIST row of\n"
                    "docs/results.md. "
                    "A flag given always wins.",
        epilog="--arch: layers joined by '-': N is a fully connected layer of N neurons, cNkK a binary\n"
               "convolution of N channels with K x K kernels (stride 1, no padding), p a 2 x 2 max-pool (after a\n"
               "convolution); the last layer has one neuron per class. The input comes first: N values, or an\n"
               "image HxW (HxWxC); before a convolution it may be left out (the data set's image). Examples:\n"
               "  --arch 64-256-256-10                 digits, fully connected (the default)\n"
               "  --arch c32k3-c64k3-p-256-10          digits (8 x 8): maps 6x6x32, 4x4x64, pooled 2x2x64; 256; 10\n"
               "  --arch c32k3-p-c64k3-p-256-10        fashion-mnist: 26x26x32, 13x13x32, 11x11x64, 5x5x64; 256; 10\n"
               "  --arch 28x28-c32k3-p-c64k3-p-256-10  the same, input stated (as the model file names it)")
    p.add_argument("--dataset", default=d.dataset, help="digits (embedded, default), fashion-mnist or mnist")
    p.add_argument("--data", metavar="DIR", help="directory of IDX files (fashion-mnist, mnist)")
    p.add_argument("--arch", help="layers, e.g. 784-256-256-256-10 or c32k3-p-c64k3-p-256-10 (see below; "
                                  f"default: {_per_dataset(lambda r: _arch_pattern(r.hidden))})")
    p.add_argument("--epochs", type=int, help=f"training epochs (default: {_defaults(lambda r: r.epochs)})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--lr", type=float, help="initial Adam learning rate, cosine decay "
                                            f"(default: {_defaults(lambda r: r.lr)})")
    p.add_argument("--seed", type=non_negative_int, default=d.seed,
                   help=f"seed of every random choice (default {d.seed})")
    p.add_argument("--input-bits", type=int, choices=(1, 8), default=d.input_bits,
                   help="8: raw pixels times binary weights (default); 1: pixels binarized by a threshold")
    p.add_argument("--input-threshold", type=int,
                   help="1-bit input: +1 where pixel >= this (default: half the data set's max value, rounded up)")
    p.add_argument("--grad", choices=GRADS, help="sign gradient of the activations "
                                                 f"(default: {_defaults(lambda r: r.grad)})")
    p.add_argument("--shift", type=int,
                   help="augment: shift the student's training images by up to this many pixels "
                        f"(default: {_defaults(lambda r: r.shift)})")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction,
                   help="augment: mirror training images left to right at random, the teacher's too; only for "
                        f"{', '.join(MIRROR_SAFE)} (default: {_defaults(lambda r: 'on' if r.flip else 'off')})")
    p.add_argument("--ghost-batches", type=int, metavar="N",
                   help="split each batch into N parts with their own batch norm statistics, computed in parallel "
                        f"(default: {_defaults(lambda r: r.ghost_batches)})")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads computing ghost batches and evaluation chunks; the model does not depend on it "
                        "(default: the processors available)")
    p.add_argument("--validation", type=float, default=d.validation,
                   help=f"fraction of the training split held out to pick the best epoch (default {d.validation})")
    p.add_argument("--teacher", nargs="?", const=True, default=False, metavar="PATH",
                   help="distil from a float MLP: train one first, or load one saved by an earlier run")
    p.add_argument("--teacher-arch", help=f"teacher layer sizes (default {_arch_pattern(TEACHER_HIDDEN)})")
    p.add_argument("--teacher-epochs", type=int, default=d.teacher_epochs, help=f"(default {d.teacher_epochs})")
    p.add_argument("--teacher-lr", type=float, default=d.teacher_lr, help=f"(default {d.teacher_lr})")
    p.add_argument("--teacher-batch-size", type=int, default=d.teacher_batch_size,
                   help=f"(default {d.teacher_batch_size})")
    p.add_argument("--teacher-shift", type=int, help="augment the teacher's training images like --shift "
                                                     f"(default: {_defaults(lambda r: r.teacher_shift)})")
    p.add_argument("--temperature", type=float,
                   help=f"distillation temperature T (default {train.Distillation.temperature})")
    p.add_argument("--distill-weight", type=float,
                   help="weight of the distillation term against the labels' cross-entropy "
                        f"(default {train.Distillation.weight})")
    p.add_argument("--out", type=path_argument, metavar="PATH",
                   help="model file to write (default runs/<dataset>-<arch>-<bits>b.bnn)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the figures on stdout")
    p.set_defaults(func=run)


def request_from_args(args):
    """The :class:`TrainRequest` of parsed ``bnn train`` arguments."""
    names = {f.name for f in dataclasses.fields(TrainRequest)}
    return TrainRequest(**{k: v for k, v in vars(args).items() if k in names})


def run(args):
    outcome = train_and_save(request_from_args(args))
    if args.json:
        emit_json(outcome.summary())
    else:
        print("\n".join(summary_lines(outcome)))
    return 0
