/**
 * Streaming reader for nuScenes tables: a JSON array of objects. The real v1.0-trainval sample_data.json
 * (~1.3 GB) is larger than the longest string V8 can hold, so the file is read in chunks, split into
 * top-level records by a byte scanner, and each record is parsed on its own. Malformed JSON is reported
 * with the file, line and column.
 */
import { createReadStream } from 'node:fs';
import { NuScenesError } from './errors.js';

const enum S { Start, FirstValue, Value, InRecord, AfterValue, Done }

const BOM = [0xef, 0xbb, 0xbf];
const WS = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

const show = (b: number) => (b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`);

/** Read `file` (a JSON array of objects) record by record. `chunkSize` is exposed for tests. */
export async function readJsonRecords(file: string, chunkSize = 1 << 22): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let state = S.Start;
  let line = 1, lineStart = 0; // lineStart: absolute byte offset of the current line's first byte
  let abs = 0; // absolute byte offset of the current chunk's first byte
  let depth = 0, inString = false, escape = false;
  let parts: Buffer[] = [];
  let recStart = 0; // offset in the current chunk where the pending record part starts
  let recLine = 0, recCol = 0;

  let curChunk: Buffer | undefined;
  const fail = (what: string, at: number, atLine: number, atLineStart: number): never => {
    if (curChunk) flush(curChunk); // an error in an earlier record of this chunk comes first
    const column = at - atLineStart + 1;
    throw new NuScenesError(`Malformed JSON in ${file} at line ${atLine}, column ${column}: ${what}`, {
      file, line: atLine, column, expected: 'a JSON array of objects',
    });
  };

  /** Parse one record's text; on failure report the line and column (recLine/recCol: where the text starts). */
  const parseRecord = (text: string, startLine: number, startCol: number): Record<string, unknown> => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      const loc = locateJsonError(text);
      let l = startLine, c = startCol;
      for (let i = 0; i < loc.offset; i++) {
        if (text.charCodeAt(i) === 0x0a) { l++; c = 1; } else c++;
      }
      throw new NuScenesError(`Malformed JSON in ${file} at line ${l}, column ${c}: ${loc.reason} (${(e as Error).message})`, {
        file, line: l, column: c, expected: 'valid JSON',
      });
    }
  };
  // Records that start and end inside the current chunk are parsed together, as one JSON array (much faster than
  // one JSON.parse per record); only if that fails are they parsed one by one to locate the error.
  let ranges: number[] = []; // start, end, line, column per record
  const flush = (chunk: Buffer): void => {
    if (ranges.length === 0) return;
    const first = ranges[0]!, last = ranges[ranges.length - 3]!; // start of the first record, end of the last
    let values: Record<string, unknown>[] | undefined;
    try {
      values = JSON.parse(`[${chunk.toString('utf8', first, last)}]`) as Record<string, unknown>[];
    } catch {
      values = undefined;
    }
    if (values && values.length === ranges.length / 4) for (const v of values) out.push(v);
    else
      for (let k = 0; k < ranges.length; k += 4)
        out.push(parseRecord(chunk.toString('utf8', ranges[k]!, ranges[k + 1]!), ranges[k + 2]!, ranges[k + 3]!));
    ranges = [];
  };

  let stream;
  try {
    stream = createReadStream(file, { highWaterMark: chunkSize });
    for await (const chunkAny of stream) {
      const chunk = chunkAny as Buffer;
      curChunk = chunk;
      const n = chunk.length;
      for (let i = 0; i < n; i++) {
        const b = chunk[i]!;
        if (state === S.InRecord) {
          if (inString) {
            if (escape) escape = false;
            else if (b === 0x5c) escape = true;
            else if (b === 0x22) inString = false;
            else if (b === 0x0a) { line++; lineStart = abs + i + 1; }
          } else if (b === 0x22) inString = true;
          else if (b === 0x7b || b === 0x5b) depth++;
          else if (b === 0x7d || b === 0x5d) {
            if (--depth === 0) {
              if (parts.length > 0) {
                // a record that started in an earlier chunk (it is the first to end in this one)
                parts.push(chunk.subarray(recStart, i + 1));
                out.push(parseRecord(Buffer.concat(parts).toString('utf8'), recLine, recCol));
                parts = [];
              } else ranges.push(recStart, i + 1, recLine, recCol);
              state = S.AfterValue;
            }
          } else if (b === 0x0a) { line++; lineStart = abs + i + 1; }
          continue;
        }
        if (b === 0x0a) { line++; lineStart = abs + i + 1; continue; }
        if (WS(b)) continue;
        if (state === S.Start && abs + i < 3 && b === BOM[abs + i]) continue; // UTF-8 byte order mark
        switch (state) {
          case S.Start:
            if (b !== 0x5b) fail(`expected '[' (a table is a JSON array of records), found ${show(b)}`, abs + i, line, lineStart);
            state = S.FirstValue;
            break;
          case S.FirstValue:
          case S.Value:
            if (b === 0x5d && state === S.FirstValue) { state = S.Done; break; }
            if (b !== 0x7b) fail(`expected a record object '{', found ${show(b)}`, abs + i, line, lineStart);
            state = S.InRecord;
            depth = 1; inString = false; escape = false;
            recStart = i; recLine = line; recCol = abs + i - lineStart + 1;
            break;
          case S.AfterValue:
            if (b === 0x2c) state = S.Value;
            else if (b === 0x5d) state = S.Done;
            else fail(`expected ',' or ']' after a record, found ${show(b)}`, abs + i, line, lineStart);
            break;
          case S.Done:
            fail(`unexpected ${show(b)} after the end of the array`, abs + i, line, lineStart);
        }
      }
      flush(chunk);
      curChunk = undefined;
      if (state === S.InRecord) {
        parts.push(chunk.subarray(recStart)); // chunks are fresh buffers: keeping a view is safe
        recStart = 0;
      }
      abs += n;
    }
  } catch (e) {
    if (e instanceof NuScenesError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new NuScenesError(`Table file not found: ${file}`, { file, expected: 'a JSON table file' });
    throw new NuScenesError(`Cannot read ${file}: ${err.message}`, { file });
  } finally {
    stream?.destroy();
  }
  if ((state as S) !== S.Done) {
    const what = (state as S) === S.InRecord ? `unexpected end of file inside the record that starts at line ${recLine}` : 'unexpected end of file (the array is not closed)';
    fail(what, abs, line, lineStart);
  }
  return out;
}

/**
 * Offset and reason of the first syntax error in `text` (called only after JSON.parse failed, to say where).
 */
export function locateJsonError(text: string): { offset: number; reason: string } {
  let i = 0;
  class Stop { constructor(readonly offset: number, readonly reason: string) {} }
  const ws = () => { while (i < text.length && WS(text.charCodeAt(i))) i++; };
  const describe = () => (i >= text.length ? 'end of input' : `'${text[i]}'`);
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new Stop(i, `expected a property name in double quotes, found ${describe()}`);
        string(); ws();
        if (text[i] !== ':') throw new Stop(i, `expected ':' after a property name, found ${describe()}`);
        i++; value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        throw new Stop(i, `expected ',' or '}' in an object, found ${describe()}`);
      }
    }
    if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        throw new Stop(i, `expected ',' or ']' in an array, found ${describe()}`);
      }
    }
    if (c === '"') return string();
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (m && m[0].length > 0) { i += m[0].length; return; }
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) { i += lit.length; return; }
    throw new Stop(i, `expected a value, found ${describe()}`);
  };
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Stop(i, 'bad \\u escape in a string');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else throw new Stop(i, 'bad escape in a string');
        continue;
      }
      if (c < 0x20) throw new Stop(i, 'control character in a string');
      i++;
    }
    throw new Stop(i, 'unterminated string');
  };
  try {
    value(); ws();
    if (i < text.length) return { offset: i, reason: `unexpected ${describe()} after the value` };
    return { offset: text.length, reason: 'invalid JSON' };
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, reason: e.reason };
    throw e;
  }
}
