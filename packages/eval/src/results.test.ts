import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeEvalBox } from './box.js';
import { defaultDetectionConfig, loadDetectionConfig, parseDetectionConfig } from './config.js';
import { EvalConfigError, JsonSyntaxError, ResultsValidationError } from './errors.js';
import { parseJsonLenient, pyFloatRepr, readJsonFile, writeJsonFile } from './json.js';
import { DetectionMetricDataList, DetectionMetrics } from './metrics.js';
import { parseResults, readResults, writeResults } from './results.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'bevzoo-eval-'));
const box = (token: string, extra: Record<string, unknown> = {}) => ({
  sample_token: token, translation: [1, 2, 0.5], size: [1.8, 4.2, 1.6], rotation: [1, 0, 0, 0], velocity: [0.5, 0],
  detection_name: 'car', detection_score: 0.8, attribute_name: 'vehicle.moving', ...extra,
});
const meta = { use_camera: true, use_lidar: false, use_radar: false, use_map: false, use_external: false };

function validationError(fn: () => unknown): ResultsValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ResultsValidationError) return e;
    throw e;
  }
  throw new Error('expected a ResultsValidationError');
}

describe('results.json', () => {
  it('round-trips through an atomic write; NaN velocity is written as null and read back as NaN', () => {
    const dir = tmp();
    const file = join(dir, 'results.json');
    const results = new Map([
      ['a', [makeEvalBox({ ...box('a'), velocity: [NaN, NaN] } as never), makeEvalBox(box('a', { detection_name: 'barrier', attribute_name: '' }) as never)]],
      ['b', []],
    ]);
    writeResults(file, { meta, results });
    expect(readdirSync(dir)).toEqual(['results.json']);
    expect(() => JSON.parse(readFileSync(file, 'utf8'))).not.toThrow();
    const back = readResults(file, { sampleTokens: ['a', 'b'] });
    expect(back.meta).toEqual(meta);
    expect([...back.results.keys()]).toEqual(['a', 'b']);
    expect(back.results.get('a')![0]!.velocity).toEqual([NaN, NaN]);
    expect(back.results.get('a')![1]!).toMatchObject({ detection_name: 'barrier', num_pts: -1, ego_translation: [0, 0, 0] });
  });

  it('reads files written by Python with bare NaN tokens', () => {
    const file = join(tmp(), 'r.json');
    writeFileSync(file, `{"meta": ${JSON.stringify(meta)}, "results": {"a": [${JSON.stringify(box('a')).replace('[0.5,0]', '[NaN, NaN]')}]}}`);
    expect(readResults(file).results.get('a')![0]!.velocity).toEqual([NaN, NaN]);
  });

  it('names the sample token and field of each validation error', () => {
    const check = (b: Record<string, unknown>, field: string, found: RegExp) => {
      const e = validationError(() => parseResults({ meta, results: { tok1: [box('tok1'), b] } }));
      expect(e.location.sampleToken).toBe('tok1');
      expect(e.location.field).toBe(field);
      expect(e.message).toMatch(found);
    };
    check(box('tok1', { detection_name: 'animal' }), 'results[1].detection_name', /found "animal"/);
    check(box('tok1', { attribute_name: 'pedestrian.moving' }), 'results[1].attribute_name', /attribute of car/);
    check(box('tok1', { detection_name: 'barrier' }), 'results[1].attribute_name', /barrier has no attributes/);
    check(box('tok1', { size: [1, 0, 1] }), 'results[1].size[1]', /size > 0/);
    check(box('tok1', { translation: [1, null, 0] }), 'results[1].translation[1]', /finite/);
    check(box('tok1', { detection_score: null }), 'results[1].detection_score', /finite/);
    check(box('tok1', { rotation: [1, 0, 0] }), 'results[1].rotation', /4 numbers/);
    check(box('tok1', { sample_token: 'other' }), 'results[1].sample_token', /tok1/);
    check(box('tok1', { num_pts: 1.5 }), 'results[1].num_pts', /integer/);
    check(box('tok1', { rotation: [0, 0, 0, 0] }), 'results[1].rotation', /non-zero norm/);
    check(box('tok1', { size: null }), 'results[1].size', /3 numbers, found null/);
    check(box('tok1', { velocity: [0, Infinity] }), 'results[1].velocity[1]', /NaN \/ null for unknown, found Infinity/);
  });

  it('rejects non-finite numbers read from a file', () => {
    const file = join(tmp(), 'r.json');
    writeFileSync(file, `{"meta": {}, "results": {"a": [${JSON.stringify(box('a')).replace('[1,2,0.5]', '[1, Infinity, 0.5]')}]}}`);
    expect(validationError(() => readResults(file)).location).toMatchObject({ file, sampleToken: 'a', field: 'results[0].translation[1]' });
  });

  it('more than max_boxes_per_sample boxes is an error, not a truncation', () => {
    const list = Array.from({ length: 3 }, () => box('a'));
    const e = validationError(() => parseResults({ meta, results: { a: list } }, { maxBoxesPerSample: 2 }));
    expect(e.location.sampleToken).toBe('a');
    expect(e.found).toBe('3 boxes');
    expect(parseResults({ meta, results: { a: list } }, { maxBoxesPerSample: 3 }).results.get('a')).toHaveLength(3);
  });

  it('result keys must equal the split samples: a missing one or one outside the split is an error naming it', () => {
    const content = { meta, results: { a: [], b: [] } };
    expect(validationError(() => parseResults(content, { sampleTokens: ['a', 'b', 'c'] })).location.sampleToken).toBe('c');
    const extra = validationError(() => parseResults(content, { sampleTokens: ['a'] }));
    expect(extra.location).toMatchObject({ sampleToken: 'b', field: 'results.b' });
    expect(extra.message).toMatch(/expected only samples of the evaluated split \(1\), found results for 1 sample token\(s\) not in it, first: b/);
    // the same from a file
    const file = join(tmp(), 'results.json');
    writeResults(file, { meta, results: new Map([['a', []], ['zz-not-in-split', []]]) });
    expect(validationError(() => readResults(file, { sampleTokens: ['a'] })).location).toMatchObject({ file, sampleToken: 'zz-not-in-split' });
    expect(validationError(() => parseResults({ meta })).location.field).toBe('results');
    expect(validationError(() => parseResults({ results: {} })).location.field).toBe('meta');
  });

  it('malformed JSON: file, line and column of the error', () => {
    const file = join(tmp(), 'bad.json');
    writeFileSync(file, '{"meta": {},\n "results": {"a": [\n  {"x": 1,}\n]}}');
    try {
      readResults(file);
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(JsonSyntaxError);
      expect((e as JsonSyntaxError).location).toMatchObject({ file, line: 3, column: 11 });
      expect((e as Error).message).toContain(`${file}:3:11`);
    }
    writeFileSync(file, '{"meta": {}, "results": {"a": [}');
    expect(() => readResults(file)).toThrow(JsonSyntaxError);
  });
});

describe('JSON with NaN', () => {
  it('parses bare NaN / Infinity / -Infinity and reports positions', () => {
    expect(parseJsonLenient('{"a": [NaN, Infinity, -Infinity, 1e-05, "x\\"y", null, true]}')).toEqual({ a: [NaN, Infinity, -Infinity, 1e-5, 'x"y', null, true] });
    expect(() => parseJsonLenient('[1, 2', 'f.json')).toThrow(/f\.json:1:6/);
    expect(() => parseJsonLenient('{"a" 1}')).toThrow(/expected ':'/);
  });

  it('pyFloatRepr writes keys like Python', () => {
    expect([0.5, 1, 2, 4, 1e-5, 1e16, 123456789012345, 0.1 + 0.2, -3, 0.0001].map(pyFloatRepr)).toEqual(
      ['0.5', '1.0', '2.0', '4.0', '1e-05', '1e+16', '123456789012345.0', '0.30000000000000004', '-3.0', '0.0001'],
    );
  });

  it('reads a devkit metrics_summary.json / metrics_details.json with bare NaN and recomputes the same NDS', () => {
    const dir = tmp();
    // The shape json.dump(metrics.serialize(), indent=2) gives in the devkit (abridged to two thresholds).
    const config = { ...defaultDetectionConfig(), dist_ths: [0.5, 2.0] };
    const la: string[] = [], lt: string[] = [];
    for (const name of Object.keys(config.class_range)) {
      la.push(`"${name}": {"0.5": 0.25, "2.0": 0.75}`);
      const nanAttr = name === 'traffic_cone' || name === 'barrier';
      lt.push(`"${name}": {"trans_err": 0.5, "scale_err": 0.25, "orient_err": ${name === 'traffic_cone' ? 'NaN' : '0.5'}, "vel_err": ${nanAttr ? 'NaN' : '1.5'}, "attr_err": ${nanAttr ? 'NaN' : '0.125'}}`);
    }
    const text = `{\n  "label_aps": {${la.join(', ')}},\n  "mean_dist_aps": {},\n  "mean_ap": 0.5,\n  "label_tp_errors": {${lt.join(', ')}},\n  "tp_errors": {},\n  "tp_scores": {},\n  "nd_score": 0.0,\n  "eval_time": 12.5,\n  "cfg": ${JSON.stringify(config)},\n  "meta": ${JSON.stringify(meta)}\n}`;
    writeFileSync(join(dir, 'metrics_summary.json'), text);
    const m = DetectionMetrics.deserialize(readJsonFile(join(dir, 'metrics_summary.json')));
    expect(m.meanAp).toBe(0.5);
    expect(m.getLabelTp('barrier', 'attr_err')).toBeNaN();
    expect(m.tpErrors).toEqual({ trans_err: 0.5, scale_err: 0.25, orient_err: 0.5, vel_err: 1.5, attr_err: 0.125 });
    expect(m.ndScore).toBe((5 * 0.5 + 0.5 + 0.75 + 0.5 + 0 + 0.875) / 10);
    expect(m.evalTime).toBe(12.5);
    // Written back as valid JSON (NaN → null) and read again.
    writeJsonFile(join(dir, 'again.json'), m.serialize());
    const again = JSON.parse(readFileSync(join(dir, 'again.json'), 'utf8')) as { label_tp_errors: Record<string, Record<string, unknown>> };
    expect(again.label_tp_errors.barrier!.attr_err).toBeNull();
    expect(DetectionMetrics.deserialize(again).ndScore).toBe(m.ndScore);

    const curve = (v: string) => `[${Array.from({ length: 101 }, () => v).join(', ')}]`;
    writeFileSync(join(dir, 'metrics_details.json'), `{"car:0.5": {"recall": ${curve('0.5')}, "precision": ${curve('1.0')}, "confidence": ${curve('0.0')}, "trans_err": ${curve('NaN')}, "vel_err": ${curve('1.0')}, "scale_err": ${curve('1.0')}, "orient_err": ${curve('1.0')}, "attr_err": ${curve('1.0')}}}`);
    const d = DetectionMetricDataList.deserialize(readJsonFile(join(dir, 'metrics_details.json')));
    expect(d.get('car', 0.5).trans_err[7]).toBeNaN();
    expect(Object.keys(d.serialize())).toEqual(['car:0.5']);
  });
});

describe('detection config', () => {
  it('loads the devkit JSON format and validates it', () => {
    const dir = tmp();
    const file = join(dir, 'config.json');
    const config = { ...defaultDetectionConfig(), class_range: { ...defaultDetectionConfig().class_range, car: 25 } };
    writeFileSync(file, JSON.stringify(config));
    expect(loadDetectionConfig(file).class_range.car).toBe(25);
    const bad = (patch: Record<string, unknown>, field: string) => {
      try {
        parseDetectionConfig({ ...defaultDetectionConfig(), ...patch }, file);
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(EvalConfigError);
        expect((e as EvalConfigError).location.field).toBe(field);
      }
    };
    bad({ dist_th_tp: 3 }, 'dist_th_tp');
    bad({ dist_fcn: 'iou' }, 'dist_fcn');
    bad({ min_precision: 1 }, 'min_precision');
    bad({ class_range: { car: 50 } }, 'class_range');
    bad({ max_boxes_per_sample: 0 }, 'max_boxes_per_sample');
  });
});
