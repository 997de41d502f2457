import type { HostTensor } from './export.js';

/** How far one output is from its reference: max |a − b| relative to the reference's scale (max |b|, at least 1e-6). */
export interface OutputComparison {
  name: string;
  maxAbs: number;
  scale: number;
  relative: number;
}

/** Per output (by name), the largest difference relative to the reference's scale; shapes must match. */
export function compareOutputs(actual: Record<string, HostTensor>, reference: Record<string, HostTensor>): OutputComparison[] {
  return Object.entries(reference).map(([name, ref]) => {
    const a = actual[name];
    if (!a) throw new Error(`compareOutputs: output ${name} missing (have ${Object.keys(actual).join(', ')})`);
    if (a.dims.join() !== ref.dims.join()) throw new Error(`compareOutputs: output ${name}: expected shape [${ref.dims}], found [${a.dims}]`);
    let maxAbs = 0, scale = 0;
    for (let i = 0; i < ref.data.length; i++) {
      const d = Math.abs(Number(a.data[i]) - Number(ref.data[i]));
      if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d;
      scale = Math.max(scale, Math.abs(Number(ref.data[i])));
    }
    scale = Math.max(scale, 1e-6);
    return { name, maxAbs, scale, relative: maxAbs / scale };
  });
}
