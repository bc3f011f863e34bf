"""Training curves as a PNG: loss and accuracy per epoch, student and (if any) teacher.

Uses Matplotlib's object interface with the Agg canvas, so no display and no global pyplot state.
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .fileio import write_atomically


def _plot_history(loss_axes, accuracy_axes, history, name, color, best_epoch):
    epochs = [r.epoch for r in history]
    loss_axes.plot(epochs, [r.train_loss for r in history], color=color, label=f"{name} train")
    loss_axes.plot(epochs, [r.val_loss for r in history], color=color, linestyle="--", label=f"{name} validation")
    accuracy_axes.plot(epochs, [r.train_accuracy for r in history], color=color, label=f"{name} train")
    accuracy_axes.plot(epochs, [r.val_accuracy for r in history], color=color, linestyle="--",
                       label=f"{name} validation")
    accuracy_axes.axvline(best_epoch, color=color, linestyle=":", linewidth=1)


def plot_training_curves(path, title, student, teacher=None):
    """Write the curves of ``student`` (and ``teacher``), :class:`model.train.FitResult` objects, to ``path``
    as a PNG, atomically (see :func:`model.fileio.write_atomically`).

    The dotted vertical line marks the epoch kept (best validation accuracy). Losses are those
    optimised: the student's includes the distillation term; validation losses are cross-entropy.
    """
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    _plot_history(loss_axes, accuracy_axes, student.history, "student (binary)", "tab:blue", student.best_epoch)
    if teacher is not None:
        _plot_history(loss_axes, accuracy_axes, teacher.history, "teacher (float)", "tab:orange", teacher.best_epoch)
    loss_axes.set(title="loss", xlabel="epoch", yscale="log")
    accuracy_axes.set(title="accuracy", xlabel="epoch")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    write_atomically(path, lambda f: figure.savefig(f, format="png", dpi=100))
