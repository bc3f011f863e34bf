"""`bnn import`: a QONNX graph of a binary network (Brevitas' export, FINN's streamlining) as a model file."""

from model.modelfile import save_model

from .common import check_output_paths, emit_json, path_argument, positive_fraction
from .extra import qonnx_interop


def add_parser(sub):
    p = sub.add_parser("import", help="read a QONNX graph (Brevitas, FINN) into a model file, exactly",
                       description="Read a QONNX graph of a binary network, as Brevitas' export_qonnx writes it "
                                   "or FINN's streamlining leaves it, into a model file whose classes equal "
                                   "qonnx's execution of the graph on every image. Anything the engine cannot "
                                   "compute exactly is refused, naming the node, before a file is written. "
                                   "Needs the extra: pip install '.[onnx]'. See docs/interop.md.")
    p.add_argument("graph", type=path_argument, metavar="MODEL.onnx", help="the QONNX graph")
    p.add_argument("--out", required=True, type=path_argument, metavar="FILE", help="model file to write")
    p.add_argument("--input-scale", type=positive_fraction, metavar="Q",
                   help="the graph's input holds p * Q for pixel p (0..255), e.g. 1/255 for inputs in [0, 1] "
                        "(default: the scale recorded by `bnn export`, else 1/255)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args):
    qonnx = qonnx_interop()
    check_output_paths([args.out])
    model = qonnx.import_qonnx(args.graph, input_scale=args.input_scale)
    save_model(model, args.out)
    report = {"graph": str(args.graph), "model": str(args.out), "arch": model.arch, "input_bits": model.input.bits,
              "input_threshold": model.input.threshold, "score_scale": model.metadata.get("score_scale"),
              "score_offset": model.metadata.get("score_offset")}
    if args.json:
        emit_json(report)
        return 0
    scale = "" if report["score_scale"] is None else \
        f"; the graph's scores are {report['score_scale']:g} * y + {report['score_offset']:g}"
    print(f"{args.out}: {model.arch}, {model.input.bits}-bit input{scale}")
    return 0
