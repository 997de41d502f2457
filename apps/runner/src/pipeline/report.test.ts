import { describe, expect, it } from 'vitest';
import { reportHtml, resultsMarkdown, toRows } from './report.js';
import type { JobResult } from './results.js';

const BANDS = ['0-20', '20-30', '30-40', '40+'];

/** A detection run with AP by ego distance for car and pedestrian (null: no GT in the band, as result.json holds NaN). */
function run(role: JobResult['role'], seed: number, car: (number | null)[], ped: (number | null)[], mean: (number | null)[], withDistance = true): JobResult {
  const byBand = (v: (number | null)[]) => Object.fromEntries(BANDS.map((b, i) => [b, v[i]]));
  return {
    id: `${role}-${seed}`, role, task: 'det', teacher: role === 'baseline' ? null : 'lidar-t', student: role === 'teacher' ? null : 'cam-s',
    distiller: role === 'distill' ? 'dist-d' : null, seed, presets: {},
    metrics: {
      mean_ap: 0.4, nd_score: 0.5, mean_dist_aps: { car: 0.5, pedestrian: 0.3 },
      ...(withDistance && {
        mean_ap_by_distance: byBand(mean), ap_by_distance: { car: byBand(car), pedestrian: byBand(ped) },
        gt_by_distance: { car: byBand([10, 5, 3, 0]), pedestrian: byBand(ped.map((v) => (v === null ? 0 : 4))) },
      }),
    },
    train: { steps: 1, seconds: 1, steps_per_s: 1, samples_per_s: 1, first_loss: 1, last_loss: 1, backend: 'wasm' },
    eval: { samples: 4, seconds: 1 }, checkpoint: '/nonexistent/model.safetensors', log: '/nonexistent/train.jsonl', finished_at: '2026-01-01T00:00:00Z',
  };
}

describe('AP by ego distance in the reports', () => {
  const results = [
    run('teacher', 0, [0.8, 0.6, 0.4, null], [0.7, 0.5, null, null], [0.75, 0.55, 0.4, null]),
    run('baseline', 0, [0.5, 0.3, 0.1, null], [0.4, 0.2, null, null], [0.45, 0.25, 0.1, null]),
    run('baseline', 1, [0.7, 0.3, 0.2, null], [0.2, 0.2, null, null], [0.45, 0.25, 0.2, null]),
    run('distill', 0, [0.6, 0.5, 0.3, null], [0.5, 0.3, null, null], [0.55, 0.4, 0.3, null]),
  ];

  it('results.md: band mAP per run group side by side, and per class the bands of each run group in one cell', () => {
    const md = resultsMarkdown(toRows(results));
    expect(md).toContain('## Detection mAP by ego distance (%)\n\n| run | mAP | 0-20 m | 20-30 m | 30-40 m | 40+ m |\n|---|---|---|---|---|---|\n' +
      '| teacher lidar-t | 40.0 | 75.0 | 55.0 | 40.0 | — |\n' +
      '| cam-s baseline | 40.0 | 45.0 | 25.0 | 15.0 | — |\n' + // mean over the two seeds
      '| cam-s ← lidar-t (dist-d) | 40.0 | 55.0 | 40.0 | 30.0 | — |');
    expect(md).toContain('## Detection per-class AP by ego distance (%; 0-20 / 20-30 / 30-40 / 40+ m)\n\n| run | car | truck |');
    expect(md).toMatch(/^\| cam-s baseline \| 60\.0 \/ 30\.0 \/ 15\.0 \/ — \| — \/ — \/ — \/ — \| .* \| 30\.0 \/ 20\.0 \/ — \/ — \|/m); // … pedestrian
  });

  it('results.md leaves the tables out when no run has them (results written before bands existed)', () => {
    const md = resultsMarkdown(toRows(results.map((r) => run(r.role, r.seed, [], [], [], false))));
    expect(md).toContain('Detection per-class AP (%');
    expect(md).not.toContain('by ego distance');
  });

  it('report.html: the tables in the per-class section, and per run AP by distance with GT counts', () => {
    const html = reportHtml(results, 'x');
    const perClass = html.slice(html.indexOf('<section id="per-class">'), html.indexOf('<section id="curves">'));
    expect(perClass).toContain('<div class="table" id="det-map-by-distance"><h3>Detection mAP by ego distance (%)</h3>');
    expect(perClass).toContain('<div class="table" id="det-ap-by-distance">');
    const runTable = html.slice(html.indexOf('id="run-baseline-0-by-distance"'));
    expect(runTable).toContain('<tr><th>class</th><th>0-20 m</th><th>20-30 m</th><th>30-40 m</th><th>40+ m</th></tr>');
    expect(runTable).toContain('<tr><td>car</td><td>0.500 (10)</td><td>0.300 (5)</td><td>0.100 (3)</td><td>—</td></tr>');
    expect(runTable).toContain('<tr><td>pedestrian</td><td>0.400 (4)</td><td>0.200 (4)</td><td>—</td><td>—</td></tr>');
    expect(runTable).toContain('<tr><td>mAP</td><td>0.450</td><td>0.250</td><td>0.100</td><td>—</td></tr>');
    expect(reportHtml([run('baseline', 0, [], [], [], false)], 'x')).not.toContain('by ego distance');
  });
});
