import { BevzooError } from '@bevzoo/core';

/**
 * An export problem: a kernel or a form of a kernel (`where`: the model and the kernel call) that has no ONNX
 * mapping, or a model output that cannot be traced. Says what was expected, what was found, and where.
 */
export class OnnxExportError extends BevzooError {
  constructor(
    readonly where: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${where}: expected ${expected}, found ${found}`, { where, expected, found });
  }
}

/** An onnxruntime problem: a session that could not be made, or feeds that do not match the model's inputs. */
export class OnnxRuntimeError extends BevzooError {
  constructor(
    readonly where: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${where}: expected ${expected}, found ${found}`, { where, expected, found });
  }
}
