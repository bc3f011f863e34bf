"""Every model of the accuracy table through QONNX and back (issue 21's round trip).

For each row of bench/train_accuracy.py whose model file (its ``--out``, under runs/bench/, written by that
bench) exists: ``bnn export``'s graph (:func:`interop.qonnx.export_qonnx`) executed by qonnx on the row's whole
test split, its scores and classes against the golden model's; then the graph imported back
(:func:`interop.qonnx.import_qonnx`) and saved: the model file must be the same, byte for byte. Needs the
extra: ``pip install '.[onnx]'``.

Writes ``bench/out/qonnx_roundtrip.json`` (rows merged by name); ``--markdown`` prints the table in
docs/results.md.

    .venv/bin/python bench/qonnx_roundtrip.py                    # every row whose model file exists
    .venv/bin/python bench/qonnx_roundtrip.py --row digits --row digits-cnn
    .venv/bin/python bench/qonnx_roundtrip.py --markdown
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bnn.cli import use_one_blas_thread  # noqa: E402

use_one_blas_thread()       # before NumPy loads, as the training bench does
import numpy as np  # noqa: E402

from bench.results import fingerprint, read, update  # noqa: E402
from bench.train_accuracy import ROWS  # noqa: E402
from interop.execute import execute_graph  # noqa: E402
from interop.qonnx import export_qonnx, import_qonnx  # noqa: E402
from model.datasets import load_dataset  # noqa: E402
from model.golden import infer  # noqa: E402
from model.modelfile import load_model, save_model  # noqa: E402

# The code that determines a row's figures (bench/results.py): the model file, golden model and data sets,
# and the import and export. (The model files themselves are the accuracy bench's, recorded with it.)
SOURCES = ["bench/qonnx_roundtrip.py", "bench/train_accuracy.py", "bnn/__init__.py", "bnn/cli.py", "bnn/cmd_train.py",
           "bnn/common.py", "interop", "model"]
BATCH = 1000        # images per execution of the graph


def model_path(row):
    """The model file the accuracy bench's row ``row`` writes."""
    argv = ROWS[row]
    return argv[argv.index("--out") + 1]


def measure(row):
    """One row's figures."""
    model = load_model(model_path(row))
    data = load_dataset(model.metadata.get("dataset", "digits"))
    images = data.test_images
    start = time.perf_counter()
    graph = export_qonnx(model)
    export_seconds = time.perf_counter() - start
    golden = infer(model, images)
    start = time.perf_counter()
    scores = np.concatenate([
        execute_graph(graph, images[i:i + BATCH], map_shape=model.input.map_shape, input_scale=1)["scores"]
        for i in range(0, len(images), BATCH)])
    execute_seconds = time.perf_counter() - start
    classes = np.argmax(scores, axis=1)
    start = time.perf_counter()
    imported = import_qonnx(graph)
    import_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "imported.bnn")
        save_model(imported, path)
        with open(path, "rb") as again, open(model_path(row), "rb") as original:
            identical = again.read() == original.read()
    return {"row": row, "arch": model.arch, "dataset": data.name, "images": len(images),
            "graph_bytes": graph.ByteSize(), "score_mismatches": int(np.sum(np.any(scores != golden.scores, axis=1))),
            "class_mismatches": int(np.sum(classes != golden.classes)),
            "accuracy": float(np.mean(classes == data.test_labels)), "identical": identical,
            "seconds": {"export": export_seconds, "execute": execute_seconds, "import": import_seconds}}


def markdown(results):
    """The table in docs/results.md, from the recorded ``results``."""
    lines = ["| accuracy row | network | test images | qonnx's execution of the export: score, class mismatches | "
             "accuracy | import of the export: same model file | seconds: export, qonnx, import |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        s = r["seconds"]
        lines.append(f"| {r['row']} | {r['arch']} | {r['images']:,} | {r['score_mismatches']}, "
                     f"{r['class_mismatches']} | {100 * r['accuracy']:.2f}% | "
                     f"{'yes, byte for byte' if r['identical'] else '**no**'} | "
                     f"{s['export']:.1f}, {s['execute']:.1f}, {s['import']:.1f} |")
    return "\n".join(lines)


def merge_row(recorded, result):
    """The recorded rows with ``result``'s row recorded anew, in the order of the accuracy table."""
    rows = {**{r["row"]: r for r in recorded.get("rows", [])}, result["row"]: result}
    return {"rows": [rows[name] for name in ROWS if name in rows]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", action="append", choices=list(ROWS), help="default: every row whose model exists")
    parser.add_argument("--markdown", action="store_true", help="print the table from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("qonnx_roundtrip")))
        return 0
    stamp = fingerprint(SOURCES)
    rows = args.row or [row for row in ROWS if os.path.exists(model_path(row))]
    for row in rows:
        if not os.path.exists(model_path(row)):
            print(f"{row}: no model file {model_path(row)}: run bench/train_accuracy.py {row} first", file=sys.stderr)
            return 1
        result = {**measure(row), "sources": stamp}
        print(f"{row}: {result['arch']}, {result['images']} images: {result['score_mismatches']} score and "
              f"{result['class_mismatches']} class mismatches, import identical: {result['identical']}", flush=True)
        update("qonnx_roundtrip", lambda recorded: merge_row(recorded, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
