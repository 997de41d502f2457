import { BevzooError } from '@bevzoo/core';

/** Where a problem was found: a file, a sample token, a field (dotted path inside the box or config). */
export interface ErrorLocation {
  file?: string;
  sampleToken?: string;
  field?: string;
  /** 1-based line and column and 0-based character offset, for JSON syntax errors. */
  line?: number;
  column?: number;
  position?: number;
}

function where(loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.file) parts.push(loc.line !== undefined ? `${loc.file}:${loc.line}:${loc.column}` : loc.file);
  if (loc.sampleToken !== undefined) parts.push(`sample ${loc.sampleToken}`);
  if (loc.field) parts.push(`field ${loc.field}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** An evaluation input that does not meet the devkit's rules: says what was expected, what was found, and where. */
export class EvalInputError extends BevzooError {
  constructor(
    readonly expected: string,
    readonly found: string,
    readonly location: ErrorLocation = {},
  ) {
    super(`expected ${expected}, found ${found}${where(location)}`, { expected, found, ...location });
  }
}

/** A results.json that fails validation (a submission problem). */
export class ResultsValidationError extends EvalInputError {}

/** A detection config that does not validate. */
export class EvalConfigError extends EvalInputError {}

/** Malformed JSON: the file and the position of the first syntax error. */
export class JsonSyntaxError extends EvalInputError {}

/** Occupancy inputs that are missing or malformed (prediction file, array shape, dtype). */
export class OccupancyInputError extends EvalInputError {}
