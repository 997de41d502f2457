/**
 * @bevzoo/onnx is an optional peer dependency of the runner (it brings onnxruntime-node's binaries): `bevzoo export`
 * and frozen teachers on onnxruntime-node load it where the project has it installed.
 */
import { dirname, join, resolve } from 'node:path';
import type { TeacherRuntimeCache } from '@bevzoo/onnx';

export type OnnxModule = typeof import('@bevzoo/onnx');

/** @bevzoo/onnx, or null where it is not installed (any other import failure is thrown). */
export async function optionalOnnx(): Promise<OnnxModule | null> {
  try {
    return await import('@bevzoo/onnx');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((e as Error).message).includes('@bevzoo/onnx')) return null;
    throw e;
  }
}

/** @bevzoo/onnx for a command that needs it: a clear error saying how to install it where it is missing. */
export async function requireOnnx(what: string): Promise<OnnxModule> {
  const m = await optionalOnnx();
  if (!m) throw new Error(`${what} needs @bevzoo/onnx, which is not installed: npm install @bevzoo/onnx (it brings onnxruntime-node)`);
  return m;
}

/**
 * Where a distillation run keeps its teacher-runtime choice for the runs beside it (`selectTeacherRuntime`'s cache):
 * `.teacher-runtime/` in the folder that holds the run's folder (a matrix's `runs/`, so every cell of a matrix shares
 * it), keyed also by `key` (what else decides the choice: the batches' shapes, the engine's kernels).
 */
export function teacherRuntimeCache(outDir: string, key: Record<string, unknown>): TeacherRuntimeCache {
  return { dir: join(dirname(resolve(outDir)), '.teacher-runtime'), key };
}
