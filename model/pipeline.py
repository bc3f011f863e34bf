"""A training run end to end: load the data set, train (optionally distilling from a teacher), fold,
verify the folded model against the float network, and save the model file, the training curves
and the teacher.

``bnn train`` is this module behind a command line; the demo and the benchmarks call it directly.
The run writes the model file, a PNG of the training curves next to it, and, when it trains a
teacher, the teacher as ``<model stem>.teacher.npz`` (reusable with ``teacher=PATH``).
"""

import dataclasses
import os
import time
from dataclasses import dataclass

import numpy as np

from . import train
from .arch import arch_name, fit_arch
from .datasets import load_dataset
from .errors import TrainingError
from .fileio import check_output_paths
from .fold import fold
from .golden import infer
from .layers import Dense, arch_string
from .modelfile import save_model
from .plot import plot_training_curves
from .student import evaluate_binary, firing_thresholds, init_binary_network
from .teacher import teacher_logits
from .teacherfile import check_teacher, load_teacher, save_teacher

TEACHER_HIDDEN = (1024, 1024)   # hidden layers of the default teacher, <inputs>-1024-1024-<classes>
MIRROR_SAFE = ("fashion-mnist",)   # data sets whose classes a left-right mirror image keeps (clothes, not digits)


@dataclass(frozen=True)
class Recipe:
    """The training settings whose default depends on the data set: the best measured for it.

    ``hidden`` are the hidden layer sizes of the default architecture ``<inputs>-<hidden>-<classes>``
    (None in a recipe for convolutional networks, whose architecture is always given); the other
    fields are the :class:`TrainRequest` fields of the same names.
    """

    hidden: tuple | None
    epochs: int
    lr: float
    grad: str
    teacher_shift: int
    shift: int = 0
    flip: bool = False
    ghost_batches: int = 1


_IDX_RECIPE = Recipe(hidden=(256, 256, 256), epochs=60, lr=3e-3, grad="approxsign", teacher_shift=1)
# digits: the demo's network (97.33% folded test accuracy in seconds). fashion-mnist: the best recipe
# measured (bench/train_accuracy.py, row fmnist-256-kd: 89.02% with the default teacher); mnist, the
# same kind of images, takes the same recipe.
RECIPES = {
    "digits": Recipe(hidden=(256, 256), epochs=50, lr=1e-2, grad="ste", teacher_shift=0),
    "fashion-mnist": _IDX_RECIPE,
    "mnist": _IDX_RECIPE,
}
# When --arch names a convolutional network: the recipes of bench/train_accuracy.py's rows digits-cnn
# and fmnist-cnn. Every recipe measured and what it gave: docs/results.md, "Training experiments". The
# default is the recipe of the CNN the boards and the MLP-against-CNN benches build, c32k3-p-c64k3-p-256-10:
# 20 epochs, no augmentation (--shift and --flip are there, the latter for MIRROR_SAFE data sets), no teacher.
# The wide network, the best measured, trains 23 epochs in 30 minutes with --ghost-batches 2 (not the default:
# the rows recorded with these defaults stay what they measured). mnist, the same kind of images, takes the
# same recipe.
_IDX_CONV_RECIPE = Recipe(hidden=None, epochs=20, lr=3e-3, grad="approxsign", teacher_shift=1)
CONV_RECIPES = {
    "digits": Recipe(hidden=None, epochs=60, lr=1e-2, grad="ste", teacher_shift=0),
    "fashion-mnist": _IDX_CONV_RECIPE,
    "mnist": _IDX_CONV_RECIPE,
}


@dataclass(frozen=True)
class TrainRequest:
    """Everything a training run can be asked; the defaults are ``bnn train``'s.

    A field of None takes a default: ``arch``, ``epochs``, ``lr``, ``grad``, ``shift``, ``flip`` and
    ``teacher_shift`` from the data set's :data:`RECIPES` entry, or its :data:`CONV_RECIPES` entry
    when ``arch`` is a convolutional network; ``teacher_arch`` is ``<inputs>-1024-1024-<classes>``;
    ``out`` is ``runs/<dataset>-<arch>-<input bits>b.bnn``; ``temperature`` and ``distill_weight``
    are :class:`model.train.Distillation`'s, and refused without a teacher; ``threads`` is
    :func:`model.train.default_threads` (all made concrete by :meth:`for_dataset`);
    ``data`` of None reads the data set from its default folder, and ``input_threshold`` of None is
    half the data set's largest pixel value, rounded up (1-bit input only). ``flip`` mirrors training
    images (the teacher's too) at random, only for :data:`MIRROR_SAFE` data sets. ``teacher`` is False (no
    distillation), True (train a teacher first) or the path of a saved teacher. The distillation
    defaults (T = 1, labels and teacher weighted equally) did best for Fashion-MNIST's
    784-256-256-256-10 among the settings tried (T = 1, 2, 4; weights 0.5, 0.7, 1).
    """

    dataset: str = "digits"
    data: str | None = None
    arch: str | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float | None = None
    seed: int = 0
    input_bits: int = 8
    input_threshold: int | None = None
    grad: str | None = None
    shift: int | None = None
    flip: bool | None = None
    ghost_batches: int | None = None
    threads: int | None = None
    validation: float = 0.1
    teacher: bool | str = False
    teacher_arch: str | None = None
    teacher_epochs: int = 15
    teacher_lr: float = 1e-3
    teacher_batch_size: int = 128
    teacher_shift: int | None = None
    temperature: float | None = None
    distill_weight: float | None = None
    out: str | None = None

    def for_dataset(self, dataset):
        """This request with every default made concrete for the loaded ``dataset``; ``arch`` becomes
        the architecture string with its input stated (:func:`model.layers.arch_string`).

        Raises :class:`TrainingError` if ``arch`` is not a valid architecture string for ``dataset``
        or ``flip`` is asked for a data set that a mirror image can change the class of.
        """
        if self.arch:
            input_shape, specs = fit_arch(self.arch, dataset, self.input_bits)
        else:
            hidden = RECIPES[dataset.name].hidden
            input_shape, specs = (dataset.input_size,), tuple(map(Dense, (*hidden, dataset.classes)))
        convolutional = not all(isinstance(spec, Dense) for spec in specs)
        recipe = (CONV_RECIPES if convolutional else RECIPES)[dataset.name]

        def chosen(name):
            value = getattr(self, name)
            return getattr(recipe, name) if value is None else value

        if chosen("flip") and dataset.name not in MIRROR_SAFE:
            raise TrainingError(f"--flip: a mirror image can change the class of a {dataset.name} image "
                                f"(flips are for {', '.join(MIRROR_SAFE)})")
        arch = arch_string(input_shape, specs)
        return dataclasses.replace(
            self, arch=arch, epochs=chosen("epochs"), lr=chosen("lr"), grad=chosen("grad"), shift=chosen("shift"),
            flip=chosen("flip"), ghost_batches=chosen("ghost_batches"), teacher_shift=chosen("teacher_shift"),
            threads=train.default_threads() if self.threads is None else self.threads,
            temperature=train.Distillation.temperature if self.temperature is None else self.temperature,
            distill_weight=train.Distillation.weight if self.distill_weight is None else self.distill_weight,
            teacher_arch=self.teacher_arch or arch_name((dataset.input_size, *TEACHER_HIDDEN, dataset.classes)),
            out=self.out or default_out(dataset.name, arch, self.input_bits))


@dataclass
class TrainOutcome:
    """What a training run produced: the folded model, its test results, and where it was written.

    ``request`` is the request as run, every default made concrete (:meth:`TrainRequest.for_dataset`).
    ``class_mismatches`` counts test images where the folded model and the float network in
    evaluation mode predict different classes; ``activation_mismatches`` counts differing
    activations of every layer but the last (max-pools included) over all test images;
    ``threshold_mismatches`` counts hidden outputs and integer pre-activations (every one the model
    file allows) where the folded threshold and the float network's batch norm and sign
    (:func:`model.ops.hidden_fires`) disagree. All are 0 when folding is exact.
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
    threshold_mismatches: int
    train_count: int
    validation_count: int
    seconds: dict
    paths: dict

    def summary(self):
        """A JSON-ready dict of the figures (what ``bnn train --json`` prints)."""
        return {
            "dataset": self.dataset.name,
            "arch": self.model.arch,
            "input_bits": self.model.input.bits,
            "grad": self.request.grad,
            "flip": self.request.flip,
            "distillation": self.teacher_accuracy is not None,
            "accuracy": {"float": self.float_accuracy, "folded": self.folded_accuracy,
                         "teacher": self.teacher_accuracy, "validation": self.student.val_accuracy},
            "mismatches": {"classes": self.class_mismatches, "activations": self.activation_mismatches,
                           "thresholds": self.threshold_mismatches},
            "counts": {"train": self.train_count, "validation": self.validation_count,
                       "test": len(self.dataset.test_labels), "epochs": self.request.epochs,
                       "best_epoch": self.student.best_epoch},
            "seconds": self.seconds,
            "paths": self.paths,
        }


def default_out(dataset_name, arch, input_bits):
    """The model file a run writes when not told: ``runs/<dataset>-<arch>-<input bits>b.bnn``."""
    return os.path.join("runs", f"{dataset_name}-{arch}-{input_bits}b.bnn")


def output_paths(out):
    """The files a run writing the model file ``out`` may write: ``{"model", "plot", "teacher"}``."""
    stem = out[:-len(".bnn")] if out.endswith(".bnn") else out
    return {"model": out, "plot": stem + ".png", "teacher": stem + ".teacher.npz"}


def _get_teacher(request, dataset, data, rng, progress):
    """``(teacher FitResult or None, teacher network or None)``: trained, loaded, or none."""
    if request.teacher is False:
        return None, None
    if request.teacher is True:
        input_shape, specs = fit_arch(request.teacher_arch, dataset, 8)
        if not all(isinstance(spec, Dense) for spec in specs):
            raise TrainingError(f"--teacher-arch {request.teacher_arch}: the teacher is a fully connected "
                                f"network, layer sizes only")
        arch = (input_shape[0], *(spec.units for spec in specs))
        # the teacher has no batch norm: split into ghost batches, its steps only run in parallel
        settings = train.TrainSettings(request.teacher_epochs, request.teacher_batch_size, request.teacher_lr,
                                       request.teacher_shift, request.flip,
                                       min(request.ghost_batches, request.teacher_batch_size)).check()
        result = train.train_teacher(data, arch, dataset.max_value, settings, rng, progress, request.threads)
        return result, result.network
    teacher = load_teacher(request.teacher)
    check_teacher(teacher, dataset)
    return None, teacher


def threshold_mismatches(net, chunk=4096):
    """Hidden outputs and integer pre-activations ``z`` in ``[-bound, bound]`` where ``net``'s
    evaluation mode (:meth:`model.student.BinaryNetwork.fires`) and its folded comparison
    (:func:`model.student.firing_thresholds`) disagree: 0 when folding is exact."""
    count = 0
    for k in net.hidden:
        row_signs, thresholds = firing_thresholds(net, k)
        bound = net.preactivation_bound(k)
        for start in range(-bound, bound + 1, chunk):
            z = np.arange(start, min(start + chunk, bound + 1))[:, None]
            count += int(np.count_nonzero(net.fires(k, z) != (row_signs * z >= thresholds)))
    return count


def _test_results(net, model, dataset):
    """``(float accuracy, folded accuracy, class mismatches, activation mismatches, threshold
    mismatches)`` on the test set."""
    float_run = evaluate_binary(net, dataset.test_images)
    golden = infer(model, dataset.test_images)
    activation_mismatches = sum(int(np.count_nonzero(np.unpackbits(folded ^ trained)))
                                for folded, trained in zip(golden.activations, float_run.activations, strict=True))
    return (train.accuracy(float_run.classes, dataset.test_labels),
            train.accuracy(golden.classes, dataset.test_labels),
            int(np.count_nonzero(float_run.classes != golden.classes)), activation_mismatches,
            threshold_mismatches(net))


def _metadata(request, dataset, net, student, teacher_net, teacher_accuracy, accuracies):
    """The model file's metadata: what was trained, how, and how well."""
    return {
        "dataset": dataset.name,
        "arch": request.arch,
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
        "flip": request.flip,
        "ghost_batches": request.ghost_batches,
        "accuracy": {"validation": student.val_accuracy, "test_float": accuracies[0], "test_folded": accuracies[1]},
        "teacher": ({"arch": arch_name(teacher_net.arch), "test_accuracy": teacher_accuracy,
                     "source": "trained" if request.teacher is True else os.path.basename(request.teacher),
                     "temperature": request.temperature, "distill_weight": request.distill_weight}
                    if teacher_net is not None else None),
        "trained_by": "bnn train",
    }


def train_and_save(request, progress=True):
    """Run ``request`` end to end (load, train, fold, verify, save, plot); return a :class:`TrainOutcome`.

    Every setting and every output location is checked before training starts; a bad one raises
    a :class:`model.errors.BnnError` with a one-line reason. Every file is written atomically.
    ``progress`` shows progress bars on a terminal.
    """
    start = time.perf_counter()
    dataset = load_dataset(request.dataset, request.data)
    if request.teacher is False and (request.temperature, request.distill_weight) != (None, None):
        raise TrainingError("--temperature and --distill-weight only apply with --teacher")
    request = request.for_dataset(dataset)
    input_shape, specs = fit_arch(request.arch, dataset, request.input_bits)
    settings = train.TrainSettings(request.epochs, request.batch_size, request.lr, request.shift, request.flip,
                                   request.ghost_batches).check()
    if request.threads < 1:
        raise TrainingError(f"--threads must be at least 1, not {request.threads}")
    if request.shift >= min(dataset.shape):
        raise TrainingError(f"--shift {request.shift} moves a {'x'.join(map(str, dataset.shape))} image out of "
                            f"sight; at most {min(dataset.shape) - 1}")
    distillation = train.Distillation(request.temperature, request.distill_weight).check()
    # every output location is checked before the work, not after it
    paths = output_paths(request.out)
    check_output_paths(paths.values())
    rng = np.random.default_rng(request.seed)
    net = init_binary_network(input_shape, specs, request.input_bits, dataset.max_value, request.grad, rng,
                                    request.input_threshold)
    data = train.split_validation(dataset, request.validation, request.seed)

    teacher_start = time.perf_counter()
    teacher_fit, teacher_net = _get_teacher(request, dataset, data, rng, progress)
    teacher_accuracy = None
    if teacher_net is not None:
        predicted = np.argmax(teacher_logits(teacher_net, dataset.test_images), axis=1)
        teacher_accuracy = train.accuracy(predicted, dataset.test_labels)
    student_start = time.perf_counter()
    student = train.train_binary(data, net, settings, rng, teacher=teacher_net, distillation=distillation,
                                 progress=progress, threads=request.threads)
    fold_start = time.perf_counter()
    model = fold(net, dataset.shape)
    fold_seconds = time.perf_counter() - fold_start
    results = _test_results(net, model, dataset)
    model = dataclasses.replace(model, metadata=_metadata(request, dataset, net, student, teacher_net,
                                                          teacher_accuracy, results))

    save_model(model, paths["model"])
    title = f"{dataset.name} {model.arch}, {request.input_bits}-bit input"
    plot_training_curves(paths["plot"], title, student, teacher_fit)
    if teacher_fit is not None:
        save_teacher(teacher_net, paths["teacher"])
    else:
        del paths["teacher"]
    seconds = {"teacher": student_start - teacher_start, "student": student.seconds, "fold": fold_seconds,
               "total": time.perf_counter() - start}
    return TrainOutcome(request, dataset, model, student, teacher_fit, teacher_accuracy, *results,
                        train_count=len(data[1]), validation_count=len(data[3]), seconds=seconds, paths=paths)


def summary_lines(outcome):
    """The human summary of a :class:`TrainOutcome`, as lines (what ``bnn train`` prints)."""
    s = outcome.summary()
    acc = s["accuracy"]
    flips = ", flips" if s["flip"] else ""
    lines = [
        f"trained {s['dataset']} {s['arch']} ({s['input_bits']}-bit input, {s['grad']}{flips}) in "
        f"{s['seconds']['total']:.1f} s; kept epoch {s['counts']['best_epoch']} of {s['counts']['epochs']}",
        f"  test accuracy: float {acc['float']:.2%}, folded {acc['folded']:.2%} "
        f"({s['mismatches']['classes']} of {s['counts']['test']} predictions differ)",
    ]
    if acc["teacher"] is not None:
        lines.append(f"  teacher test accuracy: {acc['teacher']:.2%} "
                     f"({outcome.model.metadata['teacher']['arch']}, {s['seconds']['teacher']:.1f} s)")
    lines.append("  wrote " + ", ".join(s["paths"].values()))
    return lines
