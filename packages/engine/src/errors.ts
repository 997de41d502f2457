/**
 * A problem in the compute engine: what was expected, what was found, and where
 * (backend, kernel or package).
 */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly details: { expected?: string; found?: string; where?: string } = {},
  ) {
    super(message);
    this.name = 'EngineError';
  }
}
