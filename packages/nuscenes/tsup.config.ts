import { bevzooBuild } from '../../tsup.config.base';

// The synthetic generator's worker thread is its own entry (dist/synth/worker.js, .cjs), next to the bundle.
export default bevzooBuild(['src/index.ts', 'src/synth/worker.ts']);
