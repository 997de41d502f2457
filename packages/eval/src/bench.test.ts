import { describe, expect, it } from 'vitest';
import { generateBenchData, runBench } from './bench.js';

describe('benchmark harness (small scale; timings are printed by the script, never asserted)', () => {
  it('generates the requested boxes and counts the work', () => {
    const d = generateBenchData({ samples: 30, preds: 50, gt: 10, seed: 3 });
    const r = runBench(d);
    expect(r.predBoxes).toBe(1500);
    expect(r.accumulateCalls).toBe(40);
    expect(r.filter.pred.total).toBe(1500);
    // Classes without GT return before scanning their predictions, as in the devkit.
    expect(r.predictionsScanned).toBeLessThanOrEqual(4 * r.filter.pred.afterBikeRack);
    expect(r.predictionsScanned).toBeGreaterThan(3 * r.filter.pred.afterBikeRack);
    expect(r.matches).toBeGreaterThan(0);
    expect(r.NDS).toBeGreaterThan(0);
    expect(Object.keys(r.mAPByDistance)).toEqual(['0-20', '20-30', '30-40', '40+']);
    // Same seed, same numbers.
    expect(runBench(generateBenchData({ samples: 30, preds: 50, gt: 10, seed: 3 })).NDS).toBe(r.NDS);
  });
});
