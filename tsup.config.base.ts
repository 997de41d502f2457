import { defineConfig, type Options } from 'tsup';

/** Shared build: ESM + CJS + d.ts for every package. Entries default to src/index.ts. */
export function bevzooBuild(entry: string[] = ['src/index.ts'], extra: Partial<Options> = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: false,
    shims: true,
    ...extra,
  });
}
