export { exportOnnx, captureFeeds, OPSET, type ExportOptions, type ExportableModel, type HostTensor, type OnnxExport, type OnnxInputInfo, type OnnxOutputInfo } from './export.js';
export { OnnxSession, type SessionOptions } from './session.js';
export { OnnxExportError, OnnxRuntimeError } from './errors.js';
export { KERNELS as ONNX_KERNELS } from './ops.js';
export { encodeModel, decodeModel, type ModelProto } from './proto.js';
export { recordForward, kernelCounts, type Recording, type KernelCall } from './trace.js';
export { compareOutputs, type OutputComparison } from './compare.js';
export { OnnxTeacher, type OnnxTeacherOptions, type TeacherExport } from './teacher.js';
export { selectTeacherRuntime, weightsHash, TEACHER_RUNTIMES, TeacherRuntimeError, type SelectTeacherRuntimeOptions, type TeacherRuntimeCache, type TeacherRuntimeChoice, type TeacherRuntimeRequest } from './runtime.js';
