import { BevzooError } from '@bevzoo/core';

/**
 * A CenterPoint teacher problem: a config whose parts do not fit together (`field`), or a batch that lacks what the
 * model reads. Says what was expected, what was found, and where.
 */
export class CenterPointError extends BevzooError {
  constructor(
    readonly where: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${where}: expected ${expected}, found ${found}`, { where, expected, found });
  }
}
