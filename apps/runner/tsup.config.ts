import { bevzooBuild } from '../../tsup.config.base';

// dist/bench-step.js is `pnpm bench:step` (src/bench/step.ts); it also runs itself as the child of each measurement.
export default bevzooBuild(undefined, { entry: { index: 'src/index.ts', cli: 'src/cli.ts', 'bench-step': 'src/bench/step.ts', 'bench-onnx': 'src/bench/onnx.ts', 'bench-matrix': 'src/bench/matrix.ts' } });
