#!/usr/bin/env python3
"""Check an exported .onnx file with the reference ONNX checker (python3-onnx).

    python3 packages/onnx/scripts/check_onnx.py model.onnx

Runs onnx.checker.check_model with full_check (the checker plus strict shape inference), then infers the shapes of
every value and prints one JSON line: the opset, the number of nodes, and each graph output's inferred shape (a
varying axis as its dim_param). Where onnx ships its reference evaluator (onnx >= 1.13, onnx.reference), it also runs
the model on zeros of the input shapes (varying axes at 1) and reports the output shapes it computed.
Exit 3 when onnx is not installed.
"""
import json
import sys

try:
    import onnx
    from onnx import shape_inference
except ImportError as e:  # pragma: no cover
    print(f"python3-onnx missing: {e}", file=sys.stderr)
    sys.exit(3)

path = sys.argv[1]
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

    types = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_}
    feeds = {}
    for i in model.graph.input:
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = np.zeros(shape, dtype=types[i.type.tensor_type.elem_type])
    res = ReferenceEvaluator(model).run(None, feeds)
    report["reference"] = {o.name: list(r.shape) for o, r in zip(model.graph.output, res)}
except ImportError:
    report["reference"] = None
print(json.dumps(report))
