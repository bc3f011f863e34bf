"""``bnn train``: train a binary network (optionally distilled from a float teacher), fold it, save it.

The run writes the model file, a PNG of the training curves next to it, and, when it trains a
teacher, the teacher as ``<model stem>.teacher.npz`` (reusable with ``--teacher PATH``).
"""

import dataclasses
import os
import time
from dataclasses import dataclass

import numpy as np

from model import train
from model.bits import unpack_bits
from model.datasets import load_dataset
from model.errors import TrainingError
from model.fold import fold
from model.golden import infer
from model.modelfile import save_model
from model.plot import plot_training_curves

from .common import check_output_paths, emit_json, non_negative_int, path_argument


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``bnn train`` can be asked; the defaults are the command's defaults.

    ``arch``/``teacher_arch`` of None mean ``<inputs>-256-256-<classes>`` and
    ``<inputs>-1024-1024-<classes>``. ``teacher`` is False (no distillation), True (train a
    teacher first) or the path of a saved teacher. ``out`` of None means
    ``runs/<dataset>-<arch>-<input bits>b.bnn``. The distillation defaults (T = 1, labels and
    teacher weighted equally) did best for Fashion-MNIST's 784-256-256-256-10 among the settings
    tried (T = 1, 2, 4; weights 0.5, 0.7, 1).
    """

    dataset: str = "digits"
    data: str | None = None
    arch: str | None = None
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-2
    seed: int = 0
    input_bits: int = 8
    input_threshold: int | None = None
    grad: str = "ste"
    shift: int = 0
    validation: float = 0.1
    teacher: bool | str = False
    teacher_arch: str | None = None
    teacher_epochs: int = 15
    teacher_lr: float = 1e-3
    teacher_batch_size: int = 128
    teacher_shift: int = 0
    temperature: float = train.Distillation.temperature
    distill_weight: float = train.Distillation.weight
    out: str | None = None


@dataclass
class TrainOutcome:
    """What a training run produced: the folded model, its test results, and where it was written.

    ``class_mismatches`` counts test images where the folded model and the float network in
    evaluation mode predict different classes; ``activation_mismatches`` counts differing hidden
    activations over all test images. Both are 0 when folding is exact.
    """

    request: TrainRequest
    dataset: object
    model: object
    student: train.FitResult
    teacher: train.FitResult | None
    teacher_accuracy: float | None
    float_accuracy: float
    folded_accuracy: float
    class_mismatches: int
    activation_mismatches: int
    train_count: int
    validation_count: int
    seconds: dict
    paths: dict

    def summary(self):
        """A JSON-ready dict of the figures (what ``--json`` prints)."""
        return {
            "dataset": self.dataset.name,
            "arch": self.model.arch,
            "input_bits": self.model.input.bits,
            "grad": self.request.grad,
            "distillation": self.teacher_accuracy is not None,
            "accuracy": {"float": self.float_accuracy, "folded": self.folded_accuracy,
                         "teacher": self.teacher_accuracy, "validation": self.student.val_accuracy},
            "mismatches": {"classes": self.class_mismatches, "activations": self.activation_mismatches},
            "counts": {"train": self.train_count, "validation": self.validation_count,
                       "test": len(self.dataset.test_labels), "epochs": self.request.epochs,
                       "best_epoch": self.student.best_epoch},
            "seconds": self.seconds,
            "paths": self.paths,
        }


def default_out(dataset_name, arch, input_bits):
    return os.path.join("runs", f"{dataset_name}-{train.arch_name(arch)}-{input_bits}b.bnn")


def _output_paths(out):
    stem = out[:-len(".bnn")] if out.endswith(".bnn") else out
    return {"model": out, "plot": stem + ".png", "teacher": stem + ".teacher.npz"}


def _get_teacher(request, dataset, data, rng, progress):
    """``(teacher FitResult or None, teacher network or None)``: trained, loaded, or none."""
    if request.teacher is False:
        return None, None
    if request.teacher is True:
        arch = (train.parse_arch(request.teacher_arch) if request.teacher_arch
                else (dataset.input_size, 1024, 1024, dataset.classes))
        train.check_arch(arch, dataset, 8)
        settings = train.TrainSettings(request.teacher_epochs, request.teacher_batch_size, request.teacher_lr,
                                       request.teacher_shift)
        result = train.train_teacher(data, arch, dataset.max_value, settings, rng, progress)
        return result, result.network
    teacher = train.load_teacher(request.teacher)
    train.check_teacher(teacher, dataset)
    return None, teacher


def _test_results(net, model, dataset):
    """``(float accuracy, folded accuracy, class mismatches, activation mismatches)`` on the test set."""
    float_run = train.evaluate_binary(net, dataset.test_images)
    golden = infer(model, dataset.test_images)
    activation_mismatches = sum(int(np.count_nonzero(unpack_bits(packed, fires.shape[1]) != fires))
                                for packed, fires in zip(golden.activations, float_run.hidden))
    return (train.accuracy(float_run.classes, dataset.test_labels),
            train.accuracy(golden.classes, dataset.test_labels),
            int(np.count_nonzero(float_run.classes != golden.classes)), activation_mismatches)


def _metadata(request, dataset, arch, net, student, teacher_net, teacher_accuracy, accuracies):
    distilled = teacher_net is not None
    return {
        "dataset": dataset.name,
        "arch": train.arch_name(arch),
        "input_bits": request.input_bits,
        "input_threshold": net.input_threshold,
        "class_names": list(dataset.class_names),
        "seed": request.seed,
        "grad": request.grad,
        "epochs": request.epochs,
        "best_epoch": student.best_epoch,
        "batch_size": request.batch_size,
        "lr": request.lr,
        "shift": request.shift,
        "accuracy": {"validation": student.val_accuracy, "test_float": accuracies[0], "test_folded": accuracies[1]},
        "teacher": ({"arch": train.arch_name(teacher_net.arch), "test_accuracy": teacher_accuracy,
                     "source": "trained" if request.teacher is True else os.path.basename(request.teacher),
                     "temperature": request.temperature, "distill_weight": request.distill_weight}
                    if distilled else None),
        "trained_by": "bnn train",
    }


def train_and_save(request, progress=True):
    """Run ``request`` end to end (load, train, fold, verify, save, plot); return a :class:`TrainOutcome`."""
    start = time.perf_counter()
    dataset = load_dataset(request.dataset, request.data)
    arch = (train.parse_arch(request.arch) if request.arch
            else (dataset.input_size, 256, 256, dataset.classes))
    train.check_arch(arch, dataset, request.input_bits)
    settings = train.TrainSettings(request.epochs, request.batch_size, request.lr, request.shift).check()
    if request.shift >= min(dataset.shape):
        raise TrainingError(f"--shift {request.shift} moves a {'x'.join(map(str, dataset.shape))} image out of "
                            f"sight; at most {min(dataset.shape) - 1}")
    distillation = train.Distillation(request.temperature, request.distill_weight).check()
    defaults = TrainRequest()
    if request.teacher is False and (request.temperature, request.distill_weight) != (defaults.temperature,
                                                                                    defaults.distill_weight):
        raise TrainingError("--temperature and --distill-weight only apply with --teacher")
    # every output location is checked before the work, not after it
    paths = _output_paths(request.out or default_out(dataset.name, arch, request.input_bits))
    check_output_paths(paths.values())
    rng = np.random.default_rng(request.seed)
    net = train.init_binary_network(arch, request.input_bits, dataset.max_value, request.grad, rng,
                                    request.input_threshold)
    data = train.split_validation(dataset, request.validation, request.seed)

    teacher_start = time.perf_counter()
    teacher_fit, teacher_net = _get_teacher(request, dataset, data, rng, progress)
    teacher_accuracy = None
    if teacher_net is not None:
        predicted = np.argmax(train.teacher_logits(teacher_net, dataset.test_images), axis=1)
        teacher_accuracy = train.accuracy(predicted, dataset.test_labels)
    student_start = time.perf_counter()
    student = train.train_binary(data, net, settings, rng, teacher=teacher_net, distillation=distillation,
                                 progress=progress)
    fold_start = time.perf_counter()
    model = fold(net, dataset.shape)
    fold_seconds = time.perf_counter() - fold_start
    results = _test_results(net, model, dataset)
    model = dataclasses.replace(model, metadata=_metadata(request, dataset, arch, net, student, teacher_net,
                                                          teacher_accuracy, results))

    save_model(model, paths["model"])
    title = f"{dataset.name} {model.arch}, {request.input_bits}-bit input"
    plot_training_curves(paths["plot"], title, student, teacher_fit)
    if teacher_fit is not None:
        train.save_teacher(teacher_net, paths["teacher"])
    else:
        del paths["teacher"]
    seconds = {"teacher": student_start - teacher_start, "student": student.seconds, "fold": fold_seconds,
               "total": time.perf_counter() - start}
    return TrainOutcome(request, dataset, model, student, teacher_fit, teacher_accuracy, *results,
                        train_count=len(data[1]), validation_count=len(data[3]), seconds=seconds, paths=paths)


def summary_lines(outcome):
    """The human summary of a run, as lines."""
    s = outcome.summary()
    acc = s["accuracy"]
    lines = [
        f"trained {s['dataset']} {s['arch']} ({s['input_bits']}-bit input, {s['grad']}) in "
        f"{s['seconds']['total']:.1f} s; kept epoch {s['counts']['best_epoch']} of {s['counts']['epochs']}",
        f"  test accuracy: float {acc['float']:.2%}, folded {acc['folded']:.2%} "
        f"({s['mismatches']['classes']} of {s['counts']['test']} predictions differ)",
    ]
    if acc["teacher"] is not None:
        lines.append(f"  teacher test accuracy: {acc['teacher']:.2%} "
                     f"({outcome.model.metadata['teacher']['arch']}, {s['seconds']['teacher']:.1f} s)")
    lines.append("  wrote " + ", ".join(s["paths"].values()))
    return lines


def add_parser(subparsers):
    d = TrainRequest()
    p = subparsers.add_parser("train", help="train a binary network, fold it and save the model file",
                              description="Train a binary network (optionally distilled from a float teacher), fold it "
                                          "into an integer model, check it against the golden model, and save it.")
    p.add_argument("--dataset", default=d.dataset, help="digits (embedded, default), fashion-mnist or mnist")
    p.add_argument("--data", metavar="DIR", help="directory of IDX files (fashion-mnist, mnist)")
    p.add_argument("--arch", help="layer sizes, e.g. 784-256-256-256-10 (default <inputs>-256-256-<classes>)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"initial Adam learning rate, cosine decay (default {d.lr})")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help=f"seed of every random choice (default {d.seed})")
    p.add_argument("--input-bits", type=int, choices=(1, 8), default=d.input_bits,
                   help="8: raw pixels times binary weights (default); 1: pixels binarized by a threshold")
    p.add_argument("--input-threshold", type=int,
                   help="1-bit input: +1 where pixel >= this (default: half the data set's max value, rounded up)")
    p.add_argument("--grad", choices=train.GRADS, default=d.grad, help="sign gradient of the activations")
    p.add_argument("--shift", type=int, default=d.shift,
                   help="augment: shift the student's training images by up to this many pixels (default 0)")
    p.add_argument("--validation", type=float, default=d.validation,
                   help=f"fraction of the training split held out to pick the best epoch (default {d.validation})")
    p.add_argument("--teacher", nargs="?", const=True, default=False, metavar="PATH",
                   help="distil from a float MLP: train one first, or load one saved by an earlier run")
    p.add_argument("--teacher-arch", help="teacher layer sizes (default <inputs>-1024-1024-<classes>)")
    p.add_argument("--teacher-epochs", type=int, default=d.teacher_epochs, help=f"(default {d.teacher_epochs})")
    p.add_argument("--teacher-lr", type=float, default=d.teacher_lr, help=f"(default {d.teacher_lr})")
    p.add_argument("--teacher-batch-size", type=int, default=d.teacher_batch_size,
                   help=f"(default {d.teacher_batch_size})")
    p.add_argument("--teacher-shift", type=int, default=d.teacher_shift,
                   help="augment the teacher's training images like --shift (default 0)")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help=f"distillation temperature T (default {d.temperature})")
    p.add_argument("--distill-weight", type=float, default=d.distill_weight,
                   help=f"weight of the distillation term against the labels' cross-entropy (default {d.distill_weight})")
    p.add_argument("--out", type=path_argument, metavar="PATH", help="model file to write (default runs/<dataset>-<arch>-<bits>b.bnn)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the figures on stdout")
    p.set_defaults(func=run)


def request_from_args(args):
    names = {f.name for f in dataclasses.fields(TrainRequest)}
    return TrainRequest(**{k: v for k, v in vars(args).items() if k in names})


def run(args):
    outcome = train_and_save(request_from_args(args))
    if args.json:
        emit_json(outcome.summary())
    else:
        print("\n".join(summary_lines(outcome)))
    return 0
