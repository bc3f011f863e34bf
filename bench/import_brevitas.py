"""Binary networks trained with Brevitas, exported with ``export_qonnx``, imported with ``bnn import``
and checked against qonnx's own execution of the graph on the whole Fashion-MNIST test split (issue 21).

PyTorch and Brevitas live in a venv of their own, ``.venv-brevitas`` (PyPI's default torch wheel brings
several GB of CUDA libraries: keep them out of the core and test installs). Set it up from the
repository root; install ``torch==2.13.0`` first and alone, so that no other package pulls a CUDA build
(on this project's machines that release is a CPU build on local disk; elsewhere take it from PyTorch's
CPU wheel index, ``pip install torch==2.13.0 --index-url <PyTorch's CPU index>``):

    python3 -m venv .venv-brevitas
    .venv-brevitas/bin/pip install torch==2.13.0
    .venv-brevitas/bin/pip install -r bench/requirements-brevitas.txt  # brevitas, onnx, qonnx, -e .[onnx], ...

``onnxoptimizer`` is listed because Brevitas' ``export_qonnx`` needs it ("Installation of onnx and
onnxoptimizer is required") and Brevitas does not require it. Measured on 2026-12-06: 86 s for the
first install (124 s again from scratch with the requirements file, the machine busy), 1.9 GB in the
venv (torch 2.13.0+cpu 754 MB; the project's own dependencies, the YoWASP tools among them, about
700 MB), brevitas 0.13.4, onnx 1.23.2, qonnx 1.0.0, onnxruntime 1.32.0. The data set is Debian's
``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``, see :mod:`model.datasets`). The
core venv (``.venv``, with the extra ``onnx``) runs what is measured, as a user would: ``bnn import``,
the golden model, ``bnn sim`` and ``bnn build``.

Each row trains one network on the CPU (one thread) for a fixed number of epochs, in Brevitas'
conventions for FINN's BNNs: binary weights of constant scale 1 (``SignedBinaryWeightPerTensorConst``
with ``scaling_const = 1``, as FINN's ``CommonWeightQuant``; one row keeps Brevitas' own 0.1),
``BatchNorm`` then a binary ``QuantIdentity`` (``SignedBinaryActPerTensorConst``), no biases, the last
layer's scores times a learnt scalar. The input is torchvision's ``ToTensor`` scaling ``p / 255``,
binarized (``2x - 1`` then the binary quantizer, as FINN's TFC-w1a1) or through an unsigned 8-bit
``QuantIdentity`` of constant scale 1/255 (its levels are the pixels). Then per row: ``export_qonnx``
with Brevitas' default exporter (dynamo, with PyTorch 2.9 and later) to ``runs/bench/brevitas/``;
qonnx's ``execute_onnx`` after ``cleanup_model`` on the 10,000 test images, in batches of 1,000 (the
exported graph has batch 1; a copy with batch 1,000 in its input, output and flattening ``Reshape``,
checked against the graph itself one image at a time on the first 100); ``bnn import``; the golden
model's classes on the same images; the same network through the TorchScript exporter
(``dynamo=False``, FINN's notebooks), imported and compared; and ``bnn sim`` on 300 images.
``--build`` builds the CNN row's imported model for the ULX3S 85F with ``--verify 100`` (10 minutes or
more). A mismatch where qonnx's class also has the golden model's top score is counted apart: an exact
tie of scores that qonnx's float32 arithmetic broke towards another class. The probes export untrained
networks with constructs Brevitas users write, and record what ``bnn import`` says of them and, where it
imports them, the mismatches on the test split (untrained batch norms put thresholds exactly at
reachable pre-activations: the ties). Writes ``bench/out/import_brevitas.json`` (rows merged by name).

    .venv-brevitas/bin/python bench/import_brevitas.py               # every row and the probes, ~12 min
    .venv-brevitas/bin/python bench/import_brevitas.py tfc-w1a1      # some rows
    .venv-brevitas/bin/python bench/import_brevitas.py --build       # the ULX3S 85F build of the CNN row's model
    .venv-brevitas/bin/python bench/import_brevitas.py --markdown    # print docs/results.md's table
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import ROOT, fingerprint, read, update  # noqa: E402

# The code that determines the figures (bench/results.py): the importer, the commands run, the model side
# (data set, model file, golden model) and, for bnn sim and bnn build, the gateware and its simulation.
SOURCES = ["bench/import_brevitas.py", "bnn", "interop", "model", "layout", "hw", "sim"]
NAME = "import_brevitas"
BREVITAS_PYTHON = ".venv-brevitas/bin/python"
CORE = os.path.join(ROOT, ".venv", "bin")
OUT = os.path.join("runs", "bench", "brevitas")
SIM_IMAGES = 300
BUILD_BOARD, BUILD_VERIFY = "ulx3s-85f", 100
# bench/boards.py's ULX3S CNN rows' folding, 8 x 32. bnn build's defaults (the fastest folding that fits, the
# board's 110 MHz) gave this CNN a folding using 195 of the 208 block RAMs and 26,313 LUT4s, 54 MHz before
# routing, and a router still at 83,000 overused wires after 22 minutes; 8 x 32 at 95 MHz (where the
# c32k3-p-c64k3-p-256-10 CNN closes) reached 85.1 MHz (seed 1; critical path in the engine's sequencer).
BUILD_FLAGS = ["--pe", "8", "--simd", "32", "--clock-mhz", "80"]
BATCH = 1000
SEED = 0

# name: the network, its input and its training (epochs of Adam, batch 128, learning rate 0.01 decayed
# by cosine to 0)
ROWS = {
    # FINN's TFC-w1a1 (784-64-64-64-10), binarized input
    "tfc-w1a1": {"net": "tfc", "input_bits": 1, "epochs": 20},
    # the same with an 8-bit input (scale 1/255: not a power of two, see docs/interop.md)
    "tfc-w1a1-8bit": {"net": "tfc", "input_bits": 8, "epochs": 40},
    # a CNV-like CNN the engine computes: 3x3 valid convolutions, 2x2 max-pools, 8-bit input
    "cnv-w1a1": {"net": "cnv", "input_bits": 8, "epochs": 8},
    # TFC-w1a1 with Brevitas' own binary weight quantizer, scale 0.1: not a power of two, so the graph's
    # float32 sums round (docs/interop.md)
    "tfc-w1a1-w0.1": {"net": "tfc", "input_bits": 1, "epochs": 10, "weight_scale": 0.1},
}
ARCHS = {"tfc": "784-64-64-64-10", "cnv": "28x28-c16k3-p-c32k3-p-128-10"}
BUILD_ROW = f"cnv-w1a1 {BUILD_BOARD}"
PROBE_ROW = "probes"


# --- the networks (Brevitas) ------------------------------------------------------------------------
def _quantizers():
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.core.scaling import ScalingImplType
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat

    class BinaryWeight(SignedBinaryWeightPerTensorConst):
        scaling_const = 1.0     # FINN's CommonWeightQuant; Brevitas' default is 0.1

    class PixelQuant(Uint8ActPerTensorFloat):
        """Unsigned 8 bits of constant scale 1/255: level p for the input p / 255."""
        scaling_impl_type = ScalingImplType.CONST
        restrict_scaling_type = RestrictValueType.FP
        scaling_const = 1.0
        max_val = 1.0

    return BinaryWeight, SignedBinaryActPerTensorConst, PixelQuant


def finn_input(act_quant):
    """FINN's input layer: ``2x - 1`` (pixels p / 255 to [-1, 1]), then the quantizer ``act_quant``."""
    from torch import nn
    from brevitas.nn import QuantIdentity

    class FinnInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = QuantIdentity(act_quant=act_quant)

        def forward(self, x):
            return self.quant(2.0 * x - 1.0)

    return FinnInput()


def build_network(net, input_bits, weight_scale=1.0, input_quant=None, padding=0):
    """The Brevitas network ``net`` ("tfc" or "cnv") with binary weights of scale ``weight_scale``;
    ``input_quant`` and ``padding`` replace the bench's choices (the probes)."""
    import torch
    from torch import nn
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    BinaryWeight, BinaryAct, PixelQuant = _quantizers()

    class WeightQuant(BinaryWeight):
        scaling_const = weight_scale

    def inputs():
        if input_quant is not None:
            return input_quant()
        # FINN's TFC input: the binary quantizer gives +1 for p >= 128
        return finn_input(BinaryAct) if input_bits == 1 else QuantIdentity(act_quant=PixelQuant)

    def dense(n_in, n_out):
        return [QuantLinear(n_in, n_out, bias=False, weight_quant=WeightQuant), nn.BatchNorm1d(n_out),
                QuantIdentity(act_quant=BinaryAct)]

    def conv(c_in, c_out):
        return [QuantConv2d(c_in, c_out, 3, padding=padding, bias=False, weight_quant=WeightQuant),
                nn.BatchNorm2d(c_out), QuantIdentity(act_quant=BinaryAct), nn.MaxPool2d(2)]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if net == "tfc":
                layers = [inputs(), nn.Flatten(), *dense(784, 64), *dense(64, 64), *dense(64, 64)]
                last = 64
            else:
                side = ((28 - 2 + 2 * padding) // 2 - 2 + 2 * padding) // 2
                layers = [inputs(), *conv(1, 16), *conv(16, 32), nn.Flatten(), *dense(32 * side * side, 128)]
                last = 128
            self.features = nn.Sequential(*layers)
            self.scores = QuantLinear(last, 10, bias=False, weight_quant=WeightQuant)
            self.scale = nn.Parameter(torch.tensor(0.1))     # the scores' scale, a scalar Mul

        def forward(self, x):
            return self.scores(self.features(x)) * self.scale

    return Net()


def as_tensor(images, net):
    """uint8 images ``(N, 784)`` as torchvision's ToTensor gives them: float32 ``p / 255``, ``(N, 1, 28, 28)``."""
    import torch
    x = torch.from_numpy(images).float().div(255)
    return x.reshape(-1, 1, 28, 28)


def train(network, data, epochs):
    """Adam with a cosine schedule, cross-entropy, batch 128; returns the test accuracy in PyTorch."""
    import torch
    torch.manual_seed(SEED)
    x, y = as_tensor(data.train_images, None), torch.from_numpy(data.train_labels)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    steps = epochs * ((len(x) + 127) // 128)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            loss = loss_fn(network(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"  epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, test {torch_accuracy(network, data):.4f}",
              flush=True)
    return torch_accuracy(network, data)


def torch_accuracy(network, data):
    import torch
    network.eval()
    with torch.no_grad():
        x = as_tensor(data.test_images, None)
        classes = torch.cat([network(x[s:s + BATCH]).argmax(1) for s in range(0, len(x), BATCH)])
    return float((classes.numpy() == data.test_labels).mean())


def export(network, path, **kwargs):
    """``export_qonnx`` with batch 1 (with PyTorch 2.9 and later, Brevitas uses the dynamo exporter
    unless ``dynamo=False``)."""
    import torch
    from brevitas.export import export_qonnx
    network.eval()
    export_qonnx(network, input_t=torch.zeros(1, 1, 28, 28), export_path=path, **kwargs)


# --- qonnx's execution -----------------------------------------------------------------------------
def batched(model, batch):
    """A copy of the qonnx ``model`` (a cleaned-up ``ModelWrapper``) that runs ``batch`` images at once:
    qonnx's ``execute_onnx`` needs static shapes, and the exporter writes batch 1, in the graph's input
    and output and in its ``Reshape`` targets (the flattening, ``(1, n)``); these become ``batch``, the
    rest of the graph is unchanged and its shapes are inferred again."""
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    proto = type(model.model)()
    proto.CopyFrom(model.model)
    weights = {t.name for t in proto.graph.initializer}   # the TorchScript exporter lists them as inputs too
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name not in weights:
            value.type.tensor_type.shape.dim[0].dim_value = batch
    del proto.graph.value_info[:]
    copy = ModelWrapper(proto)
    for node in proto.graph.node:
        if node.op_type == "Reshape":
            shape = copy.get_initializer(node.input[1])
            if shape is None or shape[0] != 1:
                raise ValueError(f"node {node.name}: Reshape to {shape}, not (1, ...): cannot batch it")
            name = node.input[1] + "_batched"
            copy.set_initializer(name, np.array([batch, *shape[1:]], dtype=shape.dtype))
            node.input[1] = name
    return copy.transform(InferShapes())


def qonnx_classes(path, images, check=100, denominator=255):
    """qonnx's classes and scores for ``images`` (uint8 ``(N, 784)``, given as ``p / denominator``), with
    the graph's ops, the seconds the batches took and a check of one image at a time: ``execute_onnx``
    after ``cleanup_model``, in batches of :data:`BATCH` (:func:`batched`);
    the first ``check`` images also one at a time through the graph itself, which should give the same
    scores bit for bit (it does when the sums are exact in float32; whether and by how many classes they
    differ is recorded)."""
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(path))
    weights = {t.name for t in model.graph.initializer}
    name_in = next(value.name for value in model.graph.input if value.name not in weights)
    name_out = model.graph.output[0].name
    pixels = (images.astype(np.float32) / np.float32(denominator)).reshape(-1, 1, 28, 28)
    batch = min(BATCH, len(pixels))
    began = time.perf_counter()
    copy, scores = batched(model, batch), []
    for start in range(0, len(pixels), batch):
        chunk = pixels[start:start + batch]
        if len(chunk) < batch:
            copy = batched(model, len(chunk))
        scores.append(execute_onnx(copy, {name_in: chunk})[name_out])
    scores = np.concatenate(scores)
    seconds, began = time.perf_counter() - began, time.perf_counter()
    single = np.concatenate([execute_onnx(model, {name_in: pixels[i:i + 1]})[name_out] for i in range(check)])
    per_image = (time.perf_counter() - began) / check
    classes = np.argmax(scores, axis=1)
    unbatched = {"images": check, "scores_equal": bool(np.array_equal(single, scores[:check])),
                 "class_mismatches": int((np.argmax(single, axis=1) != classes[:check]).sum()),
                 "seconds_per_image": round(per_image, 4)}
    return classes, scores, [n.op_type for n in model.graph.node], seconds, unbatched


def op_counts(ops):
    counts = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return counts


# --- the core venv's commands ------------------------------------------------------------------------
GOLDEN = """
import sys, numpy as np
from model.modelfile import load_model
from model.golden import infer
from model.datasets import load_dataset
result = infer(load_model(sys.argv[1]), load_dataset("fashion-mnist").test_images)
np.save(sys.argv[2], result.classes)
np.save(sys.argv[3], result.scores)
"""


def core(args, **kwargs):
    """Run ``args`` (``bnn ...`` or ``python ...``) with the core venv; ``(completed, seconds)``."""
    start = time.perf_counter()
    done = subprocess.run([os.path.join(CORE, args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True,
                          **kwargs)
    return done, time.perf_counter() - start


def import_graph(onnx_path, model_path, denominator=255):
    """``bnn import`` (``--input-scale 1/denominator``): ``(report, None, seconds)``, or ``(None, refusal
    line, seconds)``."""
    if os.path.exists(model_path):
        os.remove(model_path)
    done, seconds = core(["bnn", "import", onnx_path, "--out", model_path, "--input-scale", f"1/{denominator}",
                          "--json"])
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"exit status {done.returncode}", seconds
    return json.loads(done.stdout), None, seconds


def same_network(path_a, path_b):
    """Whether two model files hold the same network (input encoding and layers), their metadata aside."""
    import numpy as np
    from model.modelfile import load_model
    a, b = load_model(path_a), load_model(path_b)
    return a.input == b.input and len(a.layers) == len(b.layers) and all(
        type(la) is type(lb) and all(np.array_equal(getattr(la, f), getattr(lb, f)) for f in la.__dataclass_fields__)
        for la, lb in zip(a.layers, b.layers))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


# --- the rows ------------------------------------------------------------------------------------------
def versions():
    from importlib.metadata import version
    return {name: version(name) for name in ("torch", "brevitas", "onnx", "qonnx", "onnxruntime")}


def run_row(name, spec, data, stamp):
    import numpy as np
    import torch
    torch.manual_seed(SEED)
    print(f"{name}: training {ARCHS[spec['net']]}, {spec['input_bits']}-bit input, {spec['epochs']} epochs", flush=True)
    network = build_network(spec["net"], spec["input_bits"], spec.get("weight_scale", 1.0))
    start = time.perf_counter()
    torch_acc = train(network, data, spec["epochs"])
    train_seconds = time.perf_counter() - start
    onnx_path, model_path = os.path.join(OUT, f"{name}.onnx"), os.path.join(OUT, f"{name}.bnn")
    start = time.perf_counter()
    export(network, onnx_path)
    export_seconds = time.perf_counter() - start
    print(f"{name}: PyTorch test accuracy {torch_acc:.4f}, trained in {train_seconds:.0f} s; exported", flush=True)
    q_classes, q_scores, ops, qonnx_seconds, unbatched = qonnx_classes(onnx_path, data.test_images)
    row = {"row": name, "arch": ARCHS[spec["net"]], "input_bits": spec["input_bits"], "epochs": spec["epochs"],
           "weight_scale": spec.get("weight_scale", 1.0),
           "train_seconds": round(train_seconds, 1), "torch_accuracy": torch_acc,
           "export_seconds": round(export_seconds, 2), "graph_ops": op_counts(ops),
           "qonnx_accuracy": float((q_classes == data.test_labels).mean()), "qonnx_images": len(q_classes),
           "qonnx_seconds": round(qonnx_seconds, 1),
           "qonnx_unbatched": unbatched, "versions": versions()}
    print(f"{name}: qonnx accuracy {row['qonnx_accuracy']:.4f} in {qonnx_seconds:.1f} s", flush=True)
    report, refusal, import_seconds = import_graph(onnx_path, model_path)
    row["import_seconds"] = round(import_seconds, 2)
    if refusal:
        row["refused"] = refusal
        print(f"{name}: bnn import refused: {refusal}", flush=True)
        return {**row, "sources": stamp}
    row.update(score_scale=report.get("score_scale"), score_offset=report.get("score_offset"),
               imported_arch=report["arch"], model_sha256=sha256(model_path))
    classes_path, scores_path = os.path.join(OUT, f"{name}.classes.npy"), os.path.join(OUT, f"{name}.scores.npy")
    done, golden_seconds = core(["python", "-c", GOLDEN, model_path, classes_path, scores_path], check=True)
    g_classes, g_scores = np.load(classes_path), np.load(scores_path)
    mismatched = np.flatnonzero(g_classes != q_classes)
    row.update(golden_accuracy=float((g_classes == data.test_labels).mean()), golden_seconds=round(golden_seconds, 1),
               mismatches=int(len(mismatched)), mismatched_images=[int(i) for i in mismatched[:20]])
    # mismatches where qonnx's class has the golden model's top score too: an exact tie of scores that
    # qonnx's float32 arithmetic broke towards another class than the lowest index
    top = g_scores.max(axis=1)
    row["mismatches_at_score_ties"] = int(sum(g_scores[i, q_classes[i]] == top[i] for i in mismatched))
    if report.get("score_scale") is not None:
        line = report["score_scale"] * g_scores.astype(np.float64) + report["score_offset"]
        row["score_max_abs_error"] = float(np.max(np.abs(line - q_scores.astype(np.float64))))
    print(f"{name}: golden accuracy {row['golden_accuracy']:.4f}, {row['mismatches']} mismatches with qonnx",
          flush=True)
    # the same network through the TorchScript exporter (Brevitas' default before PyTorch 2.9, FINN's notebooks)
    ts_onnx, ts_model = os.path.join(OUT, f"{name}.torchscript.onnx"), os.path.join(OUT, f"{name}.torchscript.bnn")
    export(network, ts_onnx, dynamo=False)
    ts_report, ts_refusal, _ = import_graph(ts_onnx, ts_model)
    if ts_refusal:
        row["torchscript_refused"] = ts_refusal
    else:
        row["torchscript_same_network"] = same_network(ts_model, model_path)   # the metadata's producer differs
        ts_classes = qonnx_classes(ts_onnx, data.test_images, check=10)[0]
        row["torchscript_qonnx_mismatches_with_golden"] = int((ts_classes != g_classes).sum())
    print(f"{name}: TorchScript export: {row.get('torchscript_refused', row.get('torchscript_same_network'))}",
          flush=True)
    done, sim_seconds = core(["bnn", "sim", "--model", model_path, "--dataset", "fashion-mnist",
                              "--count", str(SIM_IMAGES), "--json"])
    row["sim_seconds"] = round(sim_seconds, 1)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        row["sim_error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
    else:
        sim = json.loads(done.stdout)
        row["sim"] = {key: sim[key] for key in sim if not isinstance(sim[key], (list, dict))}
    print(f"{name}: bnn sim {row.get('sim', row.get('sim_error'))}", flush=True)
    return {**row, "sources": stamp}


def run_build(stamp):
    row_name = "cnv-w1a1"
    model_path = os.path.join(OUT, f"{row_name}.bnn")
    done, seconds = core(["bnn", "build", "--board", BUILD_BOARD, "--model", model_path, *BUILD_FLAGS, "--verify",
                          str(BUILD_VERIFY), "--dataset", "fashion-mnist",
                          "--out", os.path.join(OUT, f"build-{BUILD_BOARD}"), "--json"])
    row = {"row": BUILD_ROW, "model": row_name, "model_sha256": sha256(model_path), "board": BUILD_BOARD,
           "flags": " ".join(BUILD_FLAGS),
           "verify_images": BUILD_VERIFY, "seconds": round(seconds, 1), "exit_status": done.returncode}
    try:
        built = json.loads(done.stdout)
        row["build"] = {key: value for key, value in built.items() if not isinstance(value, (list, dict))}
        for key in ("verify", "verify_line", "utilisation", "engine_resources"):
            if key in built:
                row[key] = built[key]
    except json.JSONDecodeError:
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
    return {**row, "sources": stamp}


# The probes: untrained networks with constructs a Brevitas user writes; what bnn import says of each.
PROBES = {
    "finn-cnv-input": "FINN's CNV input: 2x - 1, then a signed 8-bit QuantIdentity (min -1, max 1 - 2**-7, "
                      "power-of-two scale)",
    "finn-cnv-input-256": "the same, the input given as p / 256 (`--input-scale 1/256`): the levels are then "
                          "exactly p - 128",
    "conv-padding-1": "3x3 convolutions with padding 1 (zeros)",
    "untrained-cnn": "the CNN untrained (batch norms at their initial mean 0, variance 1: thresholds at y = 0, "
                     "which pre-activations reach exactly; 8-bit input of scale 1/255)",
    "untrained-cnn-256": "the same with the input given as p / 256 and an unsigned 8-bit QuantIdentity of "
                         "scale 1/256 (`--input-scale 1/256`): every sum exact in float32",
}


def run_probes(data, stamp):
    import numpy as np
    import torch
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Int8ActPerTensorFloatMinMaxInit

    class FinnInputQuant(Int8ActPerTensorFloatMinMaxInit):
        min_val, max_val = -1.0, 1.0 - 2.0 ** -7
        restrict_scaling_type = RestrictValueType.POWER_OF_TWO

    class PixelQuant256(_quantizers()[2]):
        scaling_const = max_val = 255 / 256     # scale 1/256: level p for the input p / 256

    def finn_cnv():
        return build_network("cnv", 8, input_quant=lambda: finn_input(FinnInputQuant))

    networks = {   # name: (network, the input's denominator)
        "finn-cnv-input": (finn_cnv, 255),
        "finn-cnv-input-256": (finn_cnv, 256),
        "conv-padding-1": (lambda: build_network("cnv", 8, padding=1), 255),
        "untrained-cnn": (lambda: build_network("cnv", 8), 255),
        "untrained-cnn-256": (lambda: build_network("cnv", 8, input_quant=lambda: QuantIdentity(
            act_quant=PixelQuant256)), 256),
    }
    probes = {}
    for name, (make, denominator) in networks.items():
        torch.manual_seed(SEED)
        network = make()
        network.eval()
        onnx_path, model_path = os.path.join(OUT, f"probe-{name}.onnx"), os.path.join(OUT, f"probe-{name}.bnn")
        try:
            export(network, onnx_path)
        except Exception as e:    # noqa: BLE001  (what the exporter says is the probe's result)
            probes[name] = {"what": PROBES[name], "export_failed": f"{type(e).__name__}: {e}".splitlines()[0]}
            print(f"probe {name}: {probes[name]}", flush=True)
            continue
        report, refusal, _ = import_graph(onnx_path, model_path, denominator)
        probe = {"what": PROBES[name]}
        if refusal:
            probe["refused"] = refusal
        else:
            q_classes = qonnx_classes(onnx_path, data.test_images, denominator=denominator)[0]
            classes_path, scores_path = os.path.join(OUT, "probe.classes.npy"), os.path.join(OUT, "probe.scores.npy")
            core(["python", "-c", GOLDEN, model_path, classes_path, scores_path], check=True)
            probe.update(imported_arch=report["arch"],
                         mismatches_untrained=int((np.load(classes_path) != q_classes).sum()))
        print(f"probe {name}: {probe}", flush=True)
        probes[name] = probe
    return {"row": PROBE_ROW, "probes": probes, "versions": versions(), "sources": stamp}


# --- the table ----------------------------------------------------------------------------------------
def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def markdown(results):
    rows = {row["row"]: row for row in results.get("rows", [])}
    lines = ["| network (Brevitas, Fashion-MNIST) | input | training | PyTorch | qonnx | imported (golden) "
             "| mismatches / 10,000 | import | `bnn sim` | TorchScript export |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ROWS:
        r = rows.get(name)
        if r is None:
            continue
        if "refused" in r:
            imported, mismatches, sim, ts = f"refused: {r['refused']}", "-", "-", "-"
        else:
            imported, mismatches = _pct(r.get("golden_accuracy")), f"{r['mismatches']:,}"
            if r["mismatches_at_score_ties"]:
                mismatches += f" ({r['mismatches_at_score_ties']} at an exact tie of scores)"
            s = r.get("sim")
            sim = (f"{s['frames']} images, {s['mismatches']} mismatches, {100 * s['accuracy']:.1f}%" if s
                   else r.get("sim_error", "-"))
            ts = (f"refused: {r['torchscript_refused']}" if "torchscript_refused" in r else
                  f"{'same' if r['torchscript_same_network'] else 'another'} network, "
                  f"{r['torchscript_qonnx_mismatches_with_golden']} mismatches")
        scale = "" if r["weight_scale"] == 1 else f", weight scale {r['weight_scale']:g}"
        one = r["qonnx_unbatched"]
        unbatched = "" if one["scores_equal"] else (
            f"; one image at a time: other scores, {one['class_mismatches']} of the first {one['images']} "
            f"classes differ")
        lines.append(f"| {name} `{r['arch']}`{scale} | {r['input_bits']}-bit "
                     f"| {r['epochs']} epochs, {r['train_seconds']:.0f} s "
                     f"| {_pct(r['torch_accuracy'])} | {_pct(r['qonnx_accuracy'])} "
                     f"({r['qonnx_seconds']:.1f} s{unbatched}) "
                     f"| {imported} | {mismatches} | {r['import_seconds']:.1f} s | {sim} | {ts} |")
    build = rows.get(BUILD_ROW)
    if build:
        lines.append("")
        b, engine, line = build.get("build", {}), build.get("verify") or {}, build.get("verify_line") or {}
        said = (f"Fmax {b['fmax_mhz']:.1f} MHz for {b['clock_mhz']:.0f} MHz, {b.get('pe')} x {b.get('simd')}; "
                f"engine netlist: {engine.get('frames', '-')} images, {engine.get('mismatches', '-')} mismatches; "
                f"link core over the serial line: {line.get('mismatches', '-')} mismatches, "
                f"{line.get('failed', '-')} failed" if "fmax_mhz" in b else build.get("error", "no report"))
        lines.append(f"`bnn build --board {BUILD_BOARD} {build['flags']} --verify {BUILD_VERIFY}` of the imported "
                     f"{build['model']} "
                     f"(exit status {build['exit_status']}, {build['seconds'] / 60:.0f} min): {said}.")
    probes = rows.get(PROBE_ROW)
    if probes:
        lines.append("")
        for name, p in probes["probes"].items():
            said = (f"refused: `{p['refused']}`" if "refused" in p else
                    f"export failed: `{p['export_failed']}`" if "export_failed" in p else
                    f"imported, {p['mismatches_untrained']} mismatches with qonnx on the test split (untrained)")
            lines.append(f"* {p['what']}: {said}")
    return "\n".join(lines)


def record_command(label, results):
    if label == BUILD_ROW:
        return f"{BREVITAS_PYTHON} bench/{NAME}.py --build"
    return f"{BREVITAS_PYTHON} bench/{NAME}.py {label}"


def merge_rows(recorded, rows):
    kept = [row for row in recorded.get("rows", []) if row["row"] not in {r["row"] for r in rows}]
    order = [*ROWS, BUILD_ROW, PROBE_ROW]
    return {**recorded, "rows": sorted(kept + rows, key=lambda r: order.index(r["row"]) if r["row"] in order else 99)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", help=f"rows to run, from {', '.join([*ROWS, PROBE_ROW])} (default: all)")
    parser.add_argument("--build", action="store_true",
                        help=f"only build the cnv-w1a1 row's imported model for the {BUILD_BOARD} with --verify")
    parser.add_argument("--markdown", action="store_true", help="print docs/results.md's table from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read(NAME)))
        return 0
    stamp = fingerprint(SOURCES)
    os.chdir(ROOT)
    os.makedirs(OUT, exist_ok=True)
    if args.build:
        row = run_build(stamp)
        update(NAME, lambda recorded: merge_rows(recorded, [row]))
        print(json.dumps(row, indent=1))
        return 0 if row["exit_status"] == 0 else 1
    unknown = [r for r in args.rows if r not in ROWS and r != PROBE_ROW]
    if unknown:
        parser.error(f"unknown rows {unknown}")
    import torch
    from model.datasets import load_dataset
    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    for name in args.rows or [*ROWS, PROBE_ROW]:
        row = run_probes(data, stamp) if name == PROBE_ROW else run_row(name, ROWS[name], data, stamp)
        update(NAME, lambda recorded: merge_rows(recorded, [row]))
    print(markdown(read(NAME)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
