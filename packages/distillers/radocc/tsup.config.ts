import { bevzooBuild } from '../../../tsup.config.base';

// dist/bench.js is `pnpm bench:radocc` (src/bench.ts); it imports @bevzoo/engine, a dev dependency of this package
// (kept external: the workspace has it).
export default bevzooBuild(['src/index.ts', 'src/bench.ts'], { external: ['@bevzoo/engine'] });
