/**
 * evaluateDetection end to end on a tiny nuScenes-format folder opened with the reader: GT through load_gt
 * semantics (category mapping, attributes, box_velocity, num_pts), LIDAR_TOP ego poses, range / point / bike-rack
 * filtering, results.json validation, output files.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openNuScenes } from '@bevzoo/nuscenes';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeEvalBox } from './box.js';
import { runDetEvalCli } from './cli.js';
import { ResultsValidationError } from './errors.js';
import { evaluateDetection, formatDetectionSummary, loadGroundTruth, splitSampleTokens, type DetectionDb } from './evaluate.js';
import { writeResults } from './results.js';

const T = (s: string) => s.padEnd(32, '0');
const q0 = [1, 0, 0, 0];

/** One scene, three keyframes 0.5 s apart; ego at (100 + i, 200, 0). */
function writeDataset(root: string, splits: Record<string, string[]>): void {
  const v = join(root, 'v1.0-synth');
  mkdirSync(v, { recursive: true });
  const samples = [0, 1, 2].map((i) => T(`sample${i}`));
  const ann = (id: string, i: number, inst: string, t: number[], extra: Record<string, unknown> = {}) => ({
    token: T(id), sample_token: samples[i], instance_token: T(inst), attribute_tokens: [], visibility_token: '4',
    translation: t, size: [1.8, 4.5, 1.5], rotation: q0, num_lidar_pts: 5, num_radar_pts: 1, prev: '', next: '', ...extra,
  });
  const cars = [0, 1, 2].map((i) => ann(`car${i}`, i, 'icar', [110 + i + i, 200, 1], {
    attribute_tokens: [T('amoving')], prev: i > 0 ? T(`car${i - 1}`) : '', next: i < 2 ? T(`car${i + 1}`) : '',
  }));
  const tables: Record<string, unknown[]> = {
    category: ['vehicle.car', 'vehicle.bicycle', 'static_object.bicycle_rack', 'animal', 'movable_object.barrier'].map((name) => ({ token: T(`c-${name}`), name, description: '' })),
    attribute: [{ token: T('amoving'), name: 'vehicle.moving', description: '' }, { token: T('aparked'), name: 'vehicle.parked', description: '' }, { token: T('arider'), name: 'cycle.with_rider', description: '' }],
    visibility: [{ token: '4', level: 'v80-100', description: '' }],
    instance: [
      ['icar', 'vehicle.car', 3, 'car0', 'car2'], ['ibike', 'vehicle.bicycle', 1, 'bike', 'bike'], ['irack', 'static_object.bicycle_rack', 1, 'rack', 'rack'],
      ['idog', 'animal', 1, 'dog', 'dog'], ['ibar', 'movable_object.barrier', 1, 'bar', 'bar'], ['iempty', 'vehicle.car', 1, 'empty', 'empty'],
    ].map(([t, c, n, f, l]) => ({ token: T(t as string), category_token: T(`c-${c}`), nbr_annotations: n, first_annotation_token: T(f as string), last_annotation_token: T(l as string) })),
    sensor: [{ token: T('lidar'), channel: 'LIDAR_TOP', modality: 'lidar' }],
    calibrated_sensor: [{ token: T('cs'), sensor_token: T('lidar'), translation: [0, 0, 1.8], rotation: q0, camera_intrinsic: [] }],
    ego_pose: [0, 1, 2].map((i) => ({ token: T(`ep${i}`), translation: [100 + i, 200, 0], rotation: q0, timestamp: i * 500000 })),
    log: [{ token: T('log'), logfile: 'l', vehicle: 'v', date_captured: '2024-01-01', location: 'synth' }],
    map: [{ token: T('map'), log_tokens: [T('log')], category: 'semantic_prior', filename: 'maps/none.png' }],
    scene: [{ token: T('scene'), name: 'scene-1', description: '', log_token: T('log'), nbr_samples: 3, first_sample_token: samples[0], last_sample_token: samples[2] }],
    sample: [0, 1, 2].map((i) => ({ token: samples[i], timestamp: i * 500000, scene_token: T('scene'), prev: i > 0 ? samples[i - 1] : '', next: i < 2 ? samples[i + 1] : '' })),
    sample_data: [0, 1, 2].map((i) => ({
      token: T(`sd${i}`), sample_token: samples[i], ego_pose_token: T(`ep${i}`), calibrated_sensor_token: T('cs'), filename: `samples/LIDAR_TOP/${i}.pcd.bin`,
      fileformat: 'pcd', width: 0, height: 0, timestamp: i * 500000, is_key_frame: true, prev: i > 0 ? T(`sd${i - 1}`) : '', next: i < 2 ? T(`sd${i + 1}`) : '',
    })),
    sample_annotation: [
      ...cars,
      ann('bike', 0, 'ibike', [90, 210, 0.5], { attribute_tokens: [T('arider')] }), // inside the rack → filtered
      ann('rack', 0, 'irack', [90, 210, 0.5], { size: [2, 4, 2] }),
      ann('dog', 1, 'idog', [101, 201, 0.3]), // not a detection class
      ann('bar', 1, 'ibar', [101, 231, 0.5]), // exactly 30 m from the ego → filtered
      ann('empty', 2, 'iempty', [95, 200, 1], { num_lidar_pts: 0, num_radar_pts: 0 }), // no points → filtered
    ],
  };
  mkdirSync(join(root, 'maps'));
  writeFileSync(join(root, 'maps', 'none.png'), '');
  for (const [name, rows] of Object.entries(tables)) writeFileSync(join(v, `${name}.json`), JSON.stringify(rows, null, 1));
  writeFileSync(join(v, 'splits.json'), JSON.stringify(splits));
}

describe('evaluateDetection on a nuScenes folder', () => {
  let root: string;
  let nusc: DetectionDb;
  const meta = { use_camera: true, use_lidar: false, use_radar: false, use_map: false, use_external: false };
  const tokens = [0, 1, 2].map((i) => T(`sample${i}`));
  // A perfect car per sample plus a far-away false positive with a lower score in sample 0.
  const results = () => new Map(tokens.map((t, i) => [t, [
    makeEvalBox({ sample_token: t, translation: [110 + 2 * i, 200, 1], size: [1.8, 4.5, 1.5], rotation: [1, 0, 0, 0], velocity: [4, 0], detection_name: 'car', detection_score: 0.9, attribute_name: 'vehicle.moving' }),
    ...(i === 0 ? [makeEvalBox({ sample_token: t, translation: [120, 220, 1], size: [1, 1, 1], rotation: [1, 0, 0, 0], detection_name: 'car', detection_score: 0.1, attribute_name: 'vehicle.parked' })] : []),
  ]]));

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'bevzoo-eval-ds-'));
    writeDataset(root, { synth_val: ['scene-1'], val: ['scene-1'] });
    nusc = await openNuScenes({ dataroot: root, version: 'v1.0-synth' });
  });

  it('loads GT like load_gt: detection classes only, attribute names, box_velocity, num_pts', () => {
    expect(splitSampleTokens(nusc, 'synth_val')).toEqual(tokens);
    const gt = loadGroundTruth(nusc, tokens);
    expect(gt.get(tokens[0]!)!.map((b) => b.detection_name)).toEqual(['car', 'bicycle']);
    expect(gt.get(tokens[1]!)!.map((b) => b.detection_name)).toEqual(['car', 'barrier']);
    const car1 = gt.get(tokens[1]!)![0]!;
    expect(car1).toMatchObject({ attribute_name: 'vehicle.moving', velocity: [4, 0], num_pts: 6, detection_score: -1 });
    expect(gt.get(tokens[1]!)![1]!.velocity).toEqual([NaN, NaN]);
  });

  it('filters, evaluates and writes the devkit files', () => {
    const out = join(root, 'out');
    const lines: string[] = [];
    const r = evaluateDetection({ nusc, split: 'synth_val', results: { meta, results: results() }, outDir: out, verbose: true, log: (l) => lines.push(l) });
    expect(r.filter.gt).toEqual({ total: 6, afterDistance: 5, afterPoints: 4, afterBikeRack: 3 });
    expect(r.filter.pred).toEqual({ total: 4, afterDistance: 4, afterPoints: 4, afterBikeRack: 4 });
    // The FP comes after all three TPs: precision 1 up to recall 1, where the last value (0.75) counts.
    expect(r.metrics.getLabelAp('car', 2)).toBe(0.996913580246914);
    expect(r.metrics.getLabelTp('car', 'trans_err')).toBe(0);
    expect(r.metrics.getLabelTp('car', 'vel_err')).toBe(0);
    expect(r.metrics.getLabelTp('car', 'attr_err')).toBe(0);
    expect(r.metrics.getLabelAp('bicycle', 2)).toBe(0);
    const summary = JSON.parse(readFileSync(r.files!.summary, 'utf8')) as Record<string, unknown>;
    expect(summary.meta).toEqual(meta);
    expect(Object.keys(summary)).toEqual(['label_aps', 'mean_dist_aps', 'mean_ap', 'label_tp_errors', 'tp_errors', 'tp_scores', 'nd_score', 'eval_time', 'cfg',
      'distance_bands', 'mean_ap_by_distance', 'ap_by_distance', 'gt_by_distance', 'meta']);
    // AP by ego distance (default bands): the three cars lie 10-12 m from the ego, so all in 0-20; other bands have no GT (null).
    expect(summary.distance_bands).toEqual([0, 20, 30, 40]);
    expect(summary.mean_ap_by_distance).toEqual({ '0-20': r.byDistance!.meanAp['0-20'], '20-30': null, '30-40': null, '40+': null });
    expect((summary.gt_by_distance as Record<string, unknown>).car).toEqual({ '0-20': 3, '20-30': 0, '30-40': 0, '40+': 0 });
    // The false positive lies 28 m away: outside 0-20, so the car AP there is 1 (up to float rounding).
    expect(r.byDistance!.ap.car!['0-20']).toBeCloseTo(1, 14);
    expect(formatDetectionSummary(r.summary)).toContain('AP by ego distance');
    expect((summary.label_tp_errors as Record<string, Record<string, unknown>>).barrier!.vel_err).toBeNull();
    const details = JSON.parse(readFileSync(r.files!.details, 'utf8')) as Record<string, Record<string, number[]>>;
    expect(Object.keys(details)).toHaveLength(40);
    expect(details['car:0.5']!.precision).toHaveLength(101);
    expect(lines).toContain('=> After bike rack filtering: 3');
    expect(lines.join('\n')).toContain(formatDetectionSummary(r.summary));
    expect(formatDetectionSummary(r.summary)).toMatch(/^car\s+\t0\.997 \t0\.000 \t0\.000 \t0\.000 \t0\.000 \t0\.000 $/m);
  });

  it('AP by distance takes other band edges, can be left out, and bad edges fail before anything is read', () => {
    const r = evaluateDetection({ nusc, split: 'synth_val', results: { meta, results: results() }, distanceBands: [0, 11] });
    expect(Object.keys(r.summary.mean_ap_by_distance!)).toEqual(['0-11', '11+']);
    expect(r.summary.gt_by_distance!.car).toEqual({ '0-11': 1, '11+': 2 }); // cars at 10, 11 and 12 m: a band's lower edge is inside it
    const none = evaluateDetection({ nusc, split: 'synth_val', results: { meta, results: results() }, distanceBands: false });
    expect(none.byDistance).toBeUndefined();
    expect(Object.keys(none.summary)).not.toContain('mean_ap_by_distance');
    expect(none.summary.nd_score).toBe(r.summary.nd_score);
    expect(formatDetectionSummary(none.summary)).not.toContain('AP by ego distance');
    expect(() => evaluateDetection({ nusc, split: 'synth_val', results: join(root, 'no-such-results.json'), distanceBands: [20, 10] })).toThrow(/field distance bands\[1\]/);
  });

  it('results for a sample outside the evaluated split are an error naming it, for every split, and nothing is written', () => {
    const extra = results();
    extra.set(T('elsewhere'), []);
    const out = join(root, 'out-refused');
    for (const opts of [{ split: 'val' }, { split: 'synth_val' }, { sampleTokens: tokens }]) {
      let e: unknown;
      try {
        evaluateDetection({ nusc, ...opts, results: { meta, results: extra }, outDir: out });
      } catch (err) {
        e = err;
      }
      expect(e).toBeInstanceOf(ResultsValidationError);
      expect((e as ResultsValidationError).location).toMatchObject({ sampleToken: T('elsewhere'), field: `results.${T('elsewhere')}` });
      expect((e as Error).message).toContain(T('elsewhere'));
    }
    const file = join(root, 'results-extra.json');
    writeResults(file, { meta, results: extra });
    expect(() => evaluateDetection({ nusc, split: 'synth_val', results: file, outDir: out })).toThrow(ResultsValidationError);
    expect(existsSync(out)).toBe(false);
    const missing = results();
    missing.delete(tokens[2]!);
    expect(() => evaluateDetection({ nusc, split: 'synth_val', results: { meta, results: missing } })).toThrow(/1 missing/);
  });

  it('runDetEvalCli reads results.json and prints the tables', async () => {
    const file = join(root, 'results.json');
    writeResults(file, { meta, results: results() });
    const lines: string[] = [];
    const r = await runDetEvalCli({ dataroot: root, version: 'v1.0-synth', split: 'val', results: file, out: join(root, 'cli-out'), log: (l) => lines.push(l) });
    expect(r.summary.nd_score).toBeGreaterThan(0);
    expect(lines[0]).toMatch(/^mAP: 0\.0997\nmATE: 0\.9000\n/);
  });
});
