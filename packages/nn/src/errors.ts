import { BevzooError } from '@bevzoo/core';

/** Base class of @bevzoo/nn errors. */
export class NnError extends BevzooError {}

/** A tensor whose shape does not fit a layer: `where` names the layer, `expected`/`found` describe the shapes. */
export class ShapeError extends NnError {
  constructor(
    readonly where: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${where}: expected ${expected}, found ${found}`, { where, expected, found });
  }
}

/** A state dict that does not match a module: missing or unexpected keys, or a shape mismatch. */
export class StateDictError extends NnError {
  constructor(
    message: string,
    readonly missingKeys: string[] = [],
    readonly unexpectedKeys: string[] = [],
    readonly mismatched: { key: string; expected: number[]; found: number[] }[] = [],
  ) {
    super(message, { missingKeys, unexpectedKeys, mismatched });
  }
}

/** An unsupported or invalid layer configuration. */
export class ConfigurationError extends NnError {}
