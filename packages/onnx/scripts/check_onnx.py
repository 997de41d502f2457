#!/usr/bin/env python3
"""Check an exported .onnx file with the reference ONNX checker (python3-onnx), and run it on onnx's reference evaluator.

    python3 packages/onnx/scripts/check_onnx.py model.onnx [--run DIR]

Runs onnx.checker.check_model with full_check (the checker plus strict shape inference), then infers the shapes of
every value and prints one JSON line: the opset, the number of nodes, and each graph output's inferred shape (a
varying axis as its dim_param). Where onnx ships its reference evaluator (onnx >= 1.13, onnx.reference), it also runs
the model on zeros of the input shapes (varying axes at 1) and reports the output shapes it computed.

--run DIR runs the model on onnx's reference evaluator (a second ONNX runtime, written in Python and numpy from the
operator specifications) with real inputs: DIR/feeds.json maps each graph input to {"dtype": "float32" | "int32" |
"bool", "dims": [...], "file": "x.bin"} (raw little-endian values in DIR), and the script writes each graph output to
DIR/out.<index>.bin (float32) and DIR/outputs.json ({"name": {"dims": [...], "file": ...}}).

Exit 3 when onnx is not installed; exit 4 when --run is asked and this onnx has no reference evaluator (onnx < 1.13).
"""
import json
import sys

try:
    import onnx
    from onnx import shape_inference
except ImportError as e:  # pragma: no cover
    print(f"python3-onnx missing: {e}", file=sys.stderr)
    sys.exit(3)

args = sys.argv[1:]
run_dir = None
if "--run" in args:
    i = args.index("--run")
    run_dir = args[i + 1]
    del args[i : i + 2]
path = args[0]
model = onnx.load(path)
onnx.checker.check_model(model, full_check=True)
inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def dims(t):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.type.tensor_type.shape.dim]


values = {v.name: dims(v) for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
report = {
    "onnx": onnx.__version__,
    "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
    "nodes": len(model.graph.node),
    "outputs": {o.name: values.get(o.name) for o in model.graph.output},
}
try:
    from onnx.reference import ReferenceEvaluator  # onnx >= 1.13
    import numpy as np

    if run_dir is None:  # with --run, the real inputs below
        types = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_}
        feeds = {}
        for i in model.graph.input:
            shape = [d.dim_value if d.HasField("dim_value") else 1 for d in i.type.tensor_type.shape.dim]
            feeds[i.name] = np.zeros(shape, dtype=types[i.type.tensor_type.elem_type])
        res = ReferenceEvaluator(model).run(None, feeds)
        report["reference"] = {o.name: list(r.shape) for o, r in zip(model.graph.output, res)}
except ImportError:
    report["reference"] = None
    if run_dir is not None:
        print(f"onnx {onnx.__version__} has no reference evaluator (onnx.reference, onnx >= 1.13)", file=sys.stderr)
        sys.exit(4)
if run_dir is not None:
    import os
    import time

    with open(os.path.join(run_dir, "feeds.json")) as f:
        spec = json.load(f)
    dtypes = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
    feeds = {
        name: np.fromfile(os.path.join(run_dir, s["file"]), dtype=dtypes[s["dtype"]]).reshape(s["dims"])
        for name, s in spec.items()
    }
    t0 = time.perf_counter()
    res = ReferenceEvaluator(model).run(None, feeds)
    report["run_seconds"] = time.perf_counter() - t0
    written = {}
    for k, (o, r) in enumerate(zip(model.graph.output, res)):
        name = f"out.{k}.bin"
        np.ascontiguousarray(r, dtype=np.float32).tofile(os.path.join(run_dir, name))
        written[o.name] = {"dims": list(r.shape), "file": name}
    with open(os.path.join(run_dir, "outputs.json"), "w") as f:
        json.dump(written, f)
    report["ran"] = {n: w["dims"] for n, w in written.items()}
print(json.dumps(report))
