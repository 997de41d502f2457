/** Base class of bevzoo's typed errors: what was expected, what was found, and where. */
export class BevzooError extends Error {
  constructor(message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
  }
}

/** A plugin registry problem (duplicate, unknown name, bad plugin object). */
export class RegistryError extends BevzooError {}

/** A configuration that does not validate; `issues` lists each problem with its dotted path. */
export class ConfigError extends BevzooError {
  constructor(message: string, readonly issues: { path: string; message: string }[] = []) {
    super(message, { issues });
  }
}

/** An incompatible teacher × student × distiller combination; `problems` lists every missing or mismatched feature. */
export class AssemblyError extends BevzooError {
  constructor(message: string, readonly problems: string[]) {
    super(message, { problems });
  }
}
