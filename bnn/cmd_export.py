"""`bnn export`: a model file as a QONNX graph that qonnx (and FINN) execute to the same scores."""

from model.fileio import write_atomically
from model.modelfile import load_model

from .common import check_output_paths, emit_json, path_argument
from .extra import qonnx_interop


def add_parser(sub):
    p = sub.add_parser("export", help="write a model file as a QONNX graph",
                       description="Write a model file as a QONNX graph (raw pixels 0..255 in, integer scores "
                                   "out) that qonnx executes to the golden model's scores; `bnn import` reads it "
                                   "back to the same file. Needs the extra: pip install '.[onnx]'. "
                                   "See docs/interop.md.")
    p.add_argument("model", type=path_argument, metavar="MODEL.bnn", help="the model file")
    p.add_argument("--out", required=True, type=path_argument, metavar="FILE", help="QONNX graph to write (.onnx)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    p.set_defaults(func=run)


def run(args):
    qonnx = qonnx_interop()
    model = load_model(args.model)
    check_output_paths([args.out])
    data = qonnx.export_qonnx(model).SerializeToString()
    write_atomically(args.out, lambda f: f.write(data))
    if args.json:
        emit_json({"model": str(args.model), "graph": str(args.out), "arch": model.arch, "bytes": len(data)})
    else:
        print(f"{args.out}: {model.arch} as a QONNX graph, {len(data)} bytes")
    return 0
