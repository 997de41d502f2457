/**
 * results.json ({meta, results: {sample_token: [box…]}}): read, validate, write.
 *
 * Reading works on the file's bytes: a structural scan finds each sample's array, which is parsed on its own
 * (JSON.parse, or the lenient parser when Python wrote bare NaN tokens). So a full-size submission (6,019 samples
 * × 500 boxes, over a gigabyte of JSON) is read without building one huge string.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '@bevzoo/core';
import { CLASS_ATTRIBUTES, DETECTION_CLASSES, type DetectionClass } from '@bevzoo/nuscenes';
import type { EvalBox, EvalBoxes } from './box.js';
import { ResultsValidationError, JsonSyntaxError } from './errors.js';
import { parseJson } from './json.js';

export interface ResultsMeta {
  use_camera?: boolean;
  use_lidar?: boolean;
  use_radar?: boolean;
  use_map?: boolean;
  use_external?: boolean;
  [key: string]: unknown;
}

export interface DetectionResults {
  meta: ResultsMeta;
  results: EvalBoxes;
}

export interface ValidateResultsOptions {
  /** Maximum boxes per sample (config max_boxes_per_sample, default 500); more is an error. */
  maxBoxesPerSample?: number;
  /**
   * The evaluated samples. Every one must be a key of results, and every key one of them: a result for a sample
   * outside the evaluated split is an error naming its token (the devkit drops such keys for custom splits, which
   * hides a submission made for another split).
   */
  sampleTokens?: readonly string[];
  /** File name for error messages. */
  file?: string;
}

const META_FLAGS = ['use_camera', 'use_lidar', 'use_radar', 'use_map', 'use_external'] as const;
const CLASS_SET = new Set<string>(DETECTION_CLASSES);

function typeName(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v); // JSON.stringify would say null
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Validate one submitted box and return it as an EvalBox (velocity null → NaN; ego_translation reset). */
export function parseResultBox(raw: unknown, sampleToken: string, index: number, file?: string): EvalBox {
  const at = (field: string) => ({ file, sampleToken, field: `results[${index}]${field ? `.${field}` : ''}` });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ResultsValidationError('a box object', typeName(raw), at(''));
  const b = raw as Record<string, unknown>;
  if (b.sample_token !== sampleToken) {
    throw new ResultsValidationError(`sample_token "${sampleToken}" (the key it is listed under)`, typeName(b.sample_token), at('sample_token'));
  }
  const vec = (name: string, n: number, check: (v: number) => boolean, what: string, allowNull = false): number[] => {
    const v = b[name];
    if (!Array.isArray(v) || v.length !== n) throw new ResultsValidationError(`an array of ${n} numbers`, typeName(v), at(name));
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      let x = v[i] as unknown;
      if (x === null && allowNull) x = NaN;
      if (typeof x !== 'number' || !check(x)) throw new ResultsValidationError(what, typeName(v[i]), at(`${name}[${i}]`));
      out[i] = x;
    }
    return out;
  };
  const finite = (x: number) => Number.isFinite(x);
  const translation = vec('translation', 3, finite, 'a finite number');
  const size = vec('size', 3, (x) => Number.isFinite(x) && x > 0, 'a finite size > 0');
  const rotation = vec('rotation', 4, finite, 'a finite number');
  if (rotation.every((x) => x === 0)) throw new ResultsValidationError('a quaternion (w, x, y, z) of non-zero norm', typeName(b.rotation), at('rotation'));
  // The devkit allows NaN velocities (unknown); infinities are errors.
  const velocity = vec('velocity', 2, (x) => Number.isFinite(x) || Number.isNaN(x), 'a finite number, or NaN / null for unknown', true);
  const name = b.detection_name;
  if (typeof name !== 'string' || !CLASS_SET.has(name)) {
    throw new ResultsValidationError(`a detection class (${DETECTION_CLASSES.join(', ')})`, typeName(name), at('detection_name'));
  }
  const score = b.detection_score;
  if (typeof score !== 'number' || !Number.isFinite(score)) throw new ResultsValidationError('a finite detection_score', typeName(score), at('detection_score'));
  const attr = b.attribute_name;
  const attrs = CLASS_ATTRIBUTES[name as DetectionClass];
  if (typeof attr !== 'string' || (attr !== '' && !attrs.includes(attr))) {
    throw new ResultsValidationError(
      attrs.length ? `"" or an attribute of ${name} (${attrs.join(', ')})` : `"" (${name} has no attributes)`,
      typeName(attr),
      at('attribute_name'),
    );
  }
  let numPts = -1;
  if (b.num_pts !== undefined) {
    if (typeof b.num_pts !== 'number' || !Number.isInteger(b.num_pts)) throw new ResultsValidationError('an integer num_pts', typeName(b.num_pts), at('num_pts'));
    numPts = b.num_pts;
  }
  return {
    sample_token: sampleToken,
    translation: translation as [number, number, number],
    size: size as [number, number, number],
    rotation: rotation as [number, number, number, number],
    velocity: velocity as [number, number],
    detection_name: name as DetectionClass,
    detection_score: score,
    attribute_name: attr,
    ego_translation: [0, 0, 0],
    num_pts: numPts,
  };
}

function checkMeta(meta: unknown, file?: string): ResultsMeta {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new ResultsValidationError('a "meta" object ({use_camera, use_lidar, use_radar, use_map, use_external})', typeName(meta), { file, field: 'meta' });
  }
  for (const f of META_FLAGS) {
    const v = (meta as Record<string, unknown>)[f];
    if (v !== undefined && typeof v !== 'boolean') throw new ResultsValidationError('a boolean', typeName(v), { file, field: `meta.${f}` });
  }
  return meta as ResultsMeta;
}

/**
 * The result keys must be exactly the evaluated samples (when given): a missing sample or a key of a sample outside
 * the split is a ResultsValidationError naming the first such token.
 */
export function checkSampleSet(keys: readonly string[], opts: Pick<ValidateResultsOptions, 'sampleTokens' | 'file'>): void {
  if (!opts.sampleTokens) return;
  const want = new Set(opts.sampleTokens);
  const have = new Set(keys);
  const missing = opts.sampleTokens.filter((t) => !have.has(t));
  if (missing.length) {
    throw new ResultsValidationError(
      `results for all ${want.size} samples of the evaluated split`,
      `${missing.length} missing, first: ${missing.slice(0, 3).join(', ')}`,
      { file: opts.file, sampleToken: missing[0], field: 'results' },
    );
  }
  const extra = keys.filter((t) => !want.has(t));
  if (extra.length) {
    throw new ResultsValidationError(
      `only samples of the evaluated split (${want.size})`,
      `results for ${extra.length} sample token(s) not in it, first: ${extra.slice(0, 3).join(', ')}`,
      { file: opts.file, sampleToken: extra[0], field: `results.${extra[0]}` },
    );
  }
}

/** More than max_boxes_per_sample boxes in a sample is an error (the devkit's rule; no truncation). */
export function checkBoxCount(n: number, token: string, opts: Pick<ValidateResultsOptions, 'maxBoxesPerSample' | 'file'>): void {
  const max = opts.maxBoxesPerSample ?? 500;
  if (n > max) {
    throw new ResultsValidationError(`at most ${max} boxes per sample (max_boxes_per_sample; no truncation)`, `${n} boxes`, { file: opts.file, sampleToken: token, field: 'results' });
  }
}

/** Validate parsed results.json content ({meta, results}) and convert it to EvalBoxes. */
export function parseResults(content: unknown, opts: ValidateResultsOptions = {}): DetectionResults {
  const file = opts.file;
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new ResultsValidationError('a {meta, results} object', typeName(content), { file });
  }
  const c = content as Record<string, unknown>;
  if (!('results' in c)) throw new ResultsValidationError('a "results" field (sample_token → boxes)', 'no such field', { file, field: 'results' });
  const meta = checkMeta(c.meta, file);
  const r = c.results;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new ResultsValidationError('an object sample_token → boxes', typeName(r), { file, field: 'results' });
  const keys = Object.keys(r);
  checkSampleSet(keys, opts);
  const results: EvalBoxes = new Map();
  for (const token of keys) results.set(token, parseSampleBoxes((r as Record<string, unknown>)[token], token, opts));
  return { meta, results };
}

function parseSampleBoxes(list: unknown, token: string, opts: ValidateResultsOptions): EvalBox[] {
  if (!Array.isArray(list)) throw new ResultsValidationError('an array of boxes', typeName(list), { file: opts.file, sampleToken: token, field: 'results' });
  checkBoxCount(list.length, token, opts);
  return list.map((b, i) => parseResultBox(b, token, i, opts.file));
}

// ---------------------------------------------------------------------------------------------------------------
// Byte-level scan of a results file.

const enum C {
  Quote = 34,
  Backslash = 92,
  LBrace = 123,
  RBrace = 125,
  LBracket = 91,
  RBracket = 93,
  Comma = 44,
  Colon = 58,
}

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

class Scanner {
  constructor(
    readonly buf: Uint8Array,
    readonly file: string,
  ) {}

  fail(pos: number, expected: string): never {
    let line = 1, last = -1;
    for (let i = 0; i < pos && i < this.buf.length; i++) if (this.buf[i] === 10) { line++; last = i; }
    const found = pos >= this.buf.length ? 'end of input' : JSON.stringify(Buffer.from(this.buf.subarray(pos, pos + 12)).toString('utf8'));
    throw new JsonSyntaxError(expected, found, { file: this.file, line, column: pos - last, position: pos });
  }

  ws(p: number): number {
    const b = this.buf;
    while (p < b.length && isWs(b[p]!)) p++;
    return p;
  }

  /** End (exclusive) of the string starting at p (a quote). */
  stringEnd(p: number): number {
    const b = this.buf;
    let i = p + 1;
    while (i < b.length) {
      const c = b[i]!;
      if (c === C.Quote) return i + 1;
      i += c === C.Backslash ? 2 : 1;
    }
    return this.fail(p, 'a closing quote');
  }

  /** End (exclusive) of the JSON value starting at p; structure only (contents are checked when parsed). */
  valueEnd(p: number): number {
    const b = this.buf;
    const c = b[p];
    if (c === C.Quote) return this.stringEnd(p);
    if (c === C.LBrace || c === C.LBracket) {
      const stack: number[] = [c === C.LBrace ? C.RBrace : C.RBracket];
      let i = p + 1;
      while (i < b.length) {
        const d = b[i]!;
        if (d === C.Quote) {
          i = this.stringEnd(i);
          continue;
        }
        if (d === C.LBrace) stack.push(C.RBrace);
        else if (d === C.LBracket) stack.push(C.RBracket);
        else if (d === C.RBrace || d === C.RBracket) {
          if (stack.pop() !== d) return this.fail(i, `'${String.fromCharCode(stack.length ? stack[stack.length - 1]! : d)}'`);
          if (stack.length === 0) return i + 1;
        }
        i++;
      }
      return this.fail(b.length, `'${String.fromCharCode(stack[stack.length - 1]!)}'`);
    }
    let i = p;
    while (i < b.length) {
      const d = b[i]!;
      if (d === C.Comma || d === C.RBrace || d === C.RBracket || isWs(d)) break;
      i++;
    }
    if (i === p) return this.fail(p, 'a JSON value');
    return i;
  }

  /** Entries of the object starting at p: key and value byte ranges. Returns them and the end of the object. */
  objectEntries(p: number): { entries: { key: string; start: number; end: number }[]; end: number } {
    const b = this.buf;
    p = this.ws(p);
    if (b[p] !== C.LBrace) return this.fail(p, `'{'`);
    p = this.ws(p + 1);
    const entries: { key: string; start: number; end: number }[] = [];
    if (b[p] === C.RBrace) return { entries, end: p + 1 };
    for (;;) {
      p = this.ws(p);
      if (b[p] !== C.Quote) return this.fail(p, 'a string key');
      const ke = this.stringEnd(p);
      const key = JSON.parse(Buffer.from(b.subarray(p, ke)).toString('utf8')) as string;
      p = this.ws(ke);
      if (b[p] !== C.Colon) return this.fail(p, `':'`);
      p = this.ws(p + 1);
      const end = this.valueEnd(p);
      entries.push({ key, start: p, end });
      p = this.ws(end);
      if (b[p] === C.Comma) {
        p++;
        continue;
      }
      if (b[p] === C.RBrace) return { entries, end: p + 1 };
      return this.fail(p, `',' or '}'`);
    }
  }

  /** Parse the value at [start, end) (bare NaN accepted), reporting syntax errors at file positions. */
  parse(start: number, end: number): unknown {
    const text = Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('utf8');
    try {
      return parseJson(text, this.file);
    } catch (e) {
      if (e instanceof JsonSyntaxError && e.location.position !== undefined) {
        // Re-locate in the whole file (the position is a character offset in the slice; exact for ASCII content).
        return this.fail(start + e.location.position, e.expected);
      }
      throw e;
    }
  }
}

/** Read, parse and validate a results.json file (bare NaN tokens accepted). */
export function readResults(path: string, opts: Omit<ValidateResultsOptions, 'file'> = {}): DetectionResults {
  const buf = readFileSync(path);
  const s = new Scanner(buf, path);
  const top = s.objectEntries(0);
  if (s.ws(top.end) !== buf.length) s.fail(s.ws(top.end), 'end of input');
  const o: ValidateResultsOptions = { ...opts, file: path };
  const metaE = top.entries.find((e) => e.key === 'meta');
  const resE = top.entries.find((e) => e.key === 'results');
  if (!resE) throw new ResultsValidationError('a "results" field (sample_token → boxes)', 'no such field', { file: path, field: 'results' });
  const meta = checkMeta(metaE ? s.parse(metaE.start, metaE.end) : undefined, path);
  if (buf[resE.start] !== C.LBrace) throw new ResultsValidationError('an object sample_token → boxes', typeName(s.parse(resE.start, resE.end)), { file: path, field: 'results' });
  const { entries } = s.objectEntries(resE.start);
  checkSampleSet(
    entries.map((e) => e.key),
    o,
  );
  const results: EvalBoxes = new Map();
  for (const e of entries) {
    // Duplicate keys: the last one wins (JSON.parse semantics), keeping the first one's position.
    results.set(e.key, parseSampleBoxes(s.parse(e.start, e.end), e.key, o));
  }
  return { meta, results };
}

function serializeBox(b: EvalBox): Record<string, unknown> {
  return {
    sample_token: b.sample_token,
    translation: b.translation,
    size: b.size,
    rotation: b.rotation,
    velocity: b.velocity,
    detection_name: b.detection_name,
    detection_score: b.detection_score,
    attribute_name: b.attribute_name,
  };
}

/**
 * Write results.json atomically (temp file + rename), sample by sample. Valid JSON: NaN velocities are written as
 * null (the reader maps null back to NaN).
 */
export function writeResults(path: string, res: DetectionResults): void {
  writeFileAtomicSync(path, (function* () {
    yield `{"meta": ${JSON.stringify(res.meta)}, "results": {`;
    let first = true;
    for (const [token, boxes] of res.results) {
      yield `${first ? '' : ','}\n${JSON.stringify(token)}: [${boxes.map((b) => JSON.stringify(serializeBox(b))).join(', ')}]`;
      first = false;
    }
    yield '\n}}\n';
  })());
}
