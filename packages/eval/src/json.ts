/**
 * JSON IO for evaluation files. Python's json module writes bare `NaN`, `Infinity` and `-Infinity` tokens (the
 * devkit's metrics files contain them); `parseJsonLenient` reads those. bevzoo writes valid JSON: non-finite
 * numbers become `null` (JSON.stringify's rule), and readers map `null` back to NaN where a number is expected.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '@bevzoo/core';
import { JsonSyntaxError } from './errors.js';

function lineCol(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: pos - last };
}

class Parser {
  pos = 0;
  constructor(
    private readonly s: string,
    private readonly file: string,
  ) {}

  fail(expected: string): never {
    const found = this.pos >= this.s.length ? 'end of input' : JSON.stringify(this.s.slice(this.pos, this.pos + 12));
    const { line, column } = lineCol(this.s, this.pos);
    throw new JsonSyntaxError(expected, found, { file: this.file, line, column, position: this.pos });
  }

  ws(): void {
    const s = this.s;
    let p = this.pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 32 || c === 10 || c === 13 || c === 9) p++;
      else break;
    }
    this.pos = p;
  }

  lit(word: string, value: unknown): unknown {
    if (this.s.startsWith(word, this.pos)) {
      this.pos += word.length;
      return value;
    }
    return this.fail(`a JSON value`);
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.pos];
    switch (c) {
      case '{': return this.object();
      case '[': return this.array();
      case '"': return this.string();
      case 't': return this.lit('true', true);
      case 'f': return this.lit('false', false);
      case 'n': return this.lit('null', null);
      case 'N': return this.lit('NaN', NaN);
      case 'I': return this.lit('Infinity', Infinity);
      default:
        if (c === '-' && this.s.startsWith('-Infinity', this.pos)) {
          this.pos += 9;
          return -Infinity;
        }
        return this.number();
    }
  }

  number(): number {
    const re = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.s);
    if (!m || m[0].length === 0) return this.fail('a JSON value');
    this.pos += m[0].length;
    return Number(m[0]);
  }

  string(): string {
    const s = this.s;
    const start = this.pos + 1;
    let p = start;
    let simple = true;
    for (;;) {
      if (p >= s.length) {
        this.pos = p;
        return this.fail('a closing quote');
      }
      const c = s.charCodeAt(p);
      if (c === 34) break;
      if (c === 92) {
        simple = false;
        p += 2;
        continue;
      }
      if (c < 32) {
        this.pos = p;
        return this.fail('no control character inside a string');
      }
      p++;
    }
    const raw = s.slice(start, p);
    this.pos = p + 1;
    if (simple) return raw;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      this.pos = start;
      return this.fail('a valid string escape');
    }
  }

  array(): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.pos];
      if (c === ',') this.pos++;
      else if (c === ']') {
        this.pos++;
        return out;
      } else return this.fail(`',' or ']'`);
    }
  }

  object(): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') return this.fail('a string key');
      const key = this.string();
      this.ws();
      if (this.s[this.pos] !== ':') return this.fail(`':'`);
      this.pos++;
      const v = this.value();
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.s[this.pos];
      if (c === ',') this.pos++;
      else if (c === '}') {
        this.pos++;
        return out;
      } else return this.fail(`',' or '}'`);
    }
  }
}

/**
 * Parse JSON that may contain Python's bare NaN / Infinity / -Infinity tokens. Throws JsonSyntaxError with
 * the file, line, column and offset of the first error.
 */
export function parseJsonLenient(text: string, file = '<string>'): unknown {
  const p = new Parser(text, file);
  const v = p.value();
  p.ws();
  if (p.pos !== text.length) p.fail('end of input');
  return v;
}

/** Parse JSON fast with JSON.parse; on failure fall back to the lenient parser (NaN tokens, error position). */
export function parseJson(text: string, file = '<string>'): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return parseJsonLenient(text, file);
  }
}

/** Read and parse a JSON file (bare NaN / Infinity accepted). */
export function readJsonFile(path: string): unknown {
  return parseJson(readFileSync(path, 'utf8'), path);
}

/** Write valid JSON atomically (indent 2, like the devkit); NaN and ±Infinity are written as null. */
export function writeJsonFile(path: string, value: unknown): void {
  writeFileAtomicSync(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Python's repr() of a float, used for the devkit's dictionary keys (e.g. label_aps["car"]["1.0"] and
 * metrics_details["car:0.5"]): shortest round-trip digits, ".0" for integral values, exponent form below 1e-4
 * or from 1e16 on.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const exp = x.toExponential(); // shortest digits, e.g. "1.5e-7", "-1e+16"
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-])(\d+)$/.exec(exp)!;
  const [, sign, d0, rest = '', esign, edigits] = m;
  const e = (esign === '-' ? -1 : 1) * Number(edigits);
  const digits = d0! + rest;
  if (e < -4 || e >= 16) {
    const mant = rest ? `${d0}.${rest}` : d0!;
    return `${sign}${mant}e${esign}${edigits!.padStart(2, '0')}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  if (digits.length <= e + 1) return `${sign}${digits}${'0'.repeat(e + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
}
