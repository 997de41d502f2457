import { BevzooError } from '@bevzoo/core';

/** Where a nuScenes problem was found and what was expected there. */
export interface NuScenesErrorDetails {
  /** The file involved (a table JSON, a .pcd.bin, an image, a labels.npz). */
  file?: string;
  /** The table involved (e.g. `sample_data`). */
  table?: string;
  /** The record token involved. */
  token?: string;
  /** The record field or array name involved (e.g. `ego_pose_token`, `filename`, `semantics`). */
  field?: string;
  /** 1-based line / column in `file` (malformed JSON). */
  line?: number;
  column?: number;
  expected?: string;
  found?: string;
}

/** A problem in a nuScenes-format folder: malformed table, dangling link, missing or unreadable data file. */
export class NuScenesError extends BevzooError {
  readonly file?: string;
  readonly table?: string;
  readonly token?: string;
  readonly field?: string;
  readonly line?: number;
  readonly column?: number;
  readonly expected?: string;
  readonly found?: string;

  constructor(message: string, details: NuScenesErrorDetails = {}) {
    super(message, { ...details });
    this.file = details.file;
    this.table = details.table;
    this.token = details.token;
    this.field = details.field;
    this.line = details.line;
    this.column = details.column;
    this.expected = details.expected;
    this.found = details.found;
  }
}
