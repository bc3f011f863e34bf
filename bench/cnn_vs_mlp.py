"""The Fashion-MNIST MLP against the CNN on the ULX3S: weight storage, cycles, frames/s and accuracy.

Reads the recorded results and computes the rest from the networks' shapes; it records nothing of
its own, so its table is a function of ``bench/out/boards.json`` and
``bench/out/train_accuracy.json``. For each network: its binary weights and thresholds as the model
file holds them (one bit per weight, an int32 per hidden neuron or channel); its cycles per frame on
the engine ``bnn build`` makes for it (a fully connected engine for the MLP, a conv engine for the
CNN) at the P x S and popcount pipeline of the boards bench's ``ulx3s-85f-cnn`` row
(:func:`layout.compiler.compile_model`), and the frames/s at that row's clock; its folded test accuracy
from the accuracy bench's row, or "not measured" while that row is not recorded.

    .venv/bin/python bench/cnn_vs_mlp.py      # print docs/results.md's table from the JSON files
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.boards import row_model  # noqa: E402
from bench.results import path, read  # noqa: E402
from layout.compiler import compile_model  # noqa: E402
from model.arch import parse_arch  # noqa: E402

BOARD_ROW = "ulx3s-85f-cnn"     # the boards bench's row whose engine both networks are measured on
THRESHOLD_BITS = 32             # the model file's int32 per threshold
# (name, architecture, the accuracy bench's row)
NETWORKS = [
    ("MLP", "784-256-256-256-10", "fmnist-256-kd"),
    ("CNN", "28x28-c32k3-p-c64k3-p-256-10", "fmnist-cnn"),
    ("CNN, wide", "28x28-c64k3-p-c128k3-p-256-10", "fmnist-cnn-wide"),
]


def storage(model):
    """``(binary weights, thresholds)`` of ``model``: its weight bits and its count of thresholds."""
    layers = [layer for layer in model.layers if hasattr(layer, "weights")]
    weights = sum(layer.weights_shape[0] * layer.fan_in for layer in layers)
    thresholds = sum(len(layer.thresholds) for layer in layers if layer.thresholds is not None)
    return weights, thresholds


def accuracy(rows, name, arch):
    """The folded test accuracy of the accuracy bench's row ``name`` as text, or "not measured" if
    it is not recorded; raises ValueError if that row trained other layers than ``arch``'s."""
    if name not in rows:
        return "not measured"
    if parse_arch(rows[name]["arch"])[1] != parse_arch(arch)[1]:
        raise ValueError(f"bench/out/train_accuracy.json's row {name} trained {rows[name]['arch']}, not {arch}")
    return f"{rows[name]['folded_accuracy']:.2%} (`{name}`)"


def markdown(boards, train_accuracy):
    """docs/results.md's comparison table, with the sentence that introduces it, from the recorded
    results of the boards bench (``boards``) and the accuracy bench (``train_accuracy``, None if
    that bench has recorded nothing)."""
    row = {r["row"]: r for r in boards["rows"]}[BOARD_ROW]
    trained = {r["row"]: r for r in (train_accuracy or {}).get("rows", [])}
    lines = [
        f"The Fashion-MNIST MLP against the CNN on the {row['board']}'s {row['pe']} x {row['simd']} engine "
        f"({row['tree_stages']} popcount pipeline stages) at {row['clock_mhz']:.0f} MHz, the `{BOARD_ROW}` "
        f"row's clock, each network on the engine `bnn build` makes for it (`bench/cnn_vs_mlp.py`; weights "
        f"as the model file holds them: a bit per weight, an int32 per threshold):",
        "",
        "| network | binary weights | thresholds | weight storage | cycles/frame | frames/s | folded test accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, arch, accuracy_row in NETWORKS:
        model = row_model(arch, 8)
        weights, thresholds = storage(model)
        bits = weights + THRESHOLD_BITS * thresholds
        cycles = compile_model(model, pe=row["pe"], simd=row["simd"], tree_stages=row["tree_stages"]).cycles_per_frame
        lines.append(f"| {name} {arch} | {weights:,} bits | {thresholds:,} x {THRESHOLD_BITS} bits | "
                     f"{bits:,} bits ({bits / 8192:.1f} KiB) | {cycles:,} | "
                     f"{row['clock_mhz'] * 1e6 / cycles:,.0f} | {accuracy(trained, accuracy_row, arch)} |")
    return "\n".join(lines)


def recorded_markdown():
    """:func:`markdown` of the results on file (the accuracy bench's may not be there yet)."""
    return markdown(read("boards"), read("train_accuracy") if os.path.exists(path("train_accuracy")) else None)


def main():
    print(recorded_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
