import { bevzooBuild } from '../../tsup.config.base';

// tfjs-core ships its gradient registrations only as extensionless ESM files (its Node entry has none),
// so they are bundled into dist, as @tensorflow/tfjs itself does; tfjs-core stays external otherwise.
// The intra-op worker is its own entry (dist/worker.js, .cjs), next to the bundles that start it.
export default bevzooBuild(['src/index.ts', 'src/bench.ts', 'src/worker.ts'], {
  noExternal: [/^@tensorflow\/tfjs-core\/dist\/register_all_gradients/],
});
