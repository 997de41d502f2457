/** Broken inputs: each error is a NuScenesError naming the file / table / token / field involved. */
import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NuScenesError } from './errors.js';
import { loadFrame } from './frame.js';
import { writeNpz } from './npz.js';
import { loadOccLabels } from './occ.js';
import { openNuScenes } from './reader.js';
import { buildFixture, type Fixture } from './test-fixture.js';

const open = (fx: Fixture) => openNuScenes({ dataroot: fx.dataroot, version: fx.version });
const table = (fx: Fixture, name: string) => join(fx.dataroot, fx.version, `${name}.json`);
async function editTable(fx: Fixture, name: string, edit: (rows: Record<string, unknown>[]) => void): Promise<void> {
  const rows = JSON.parse(await readFile(table(fx, name), 'utf8')) as Record<string, unknown>[];
  edit(rows);
  await writeFile(table(fx, name), JSON.stringify(rows, null, 1));
}
async function rejection(p: Promise<unknown>): Promise<NuScenesError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof NuScenesError)) throw new Error(`expected a NuScenesError, got ${String(e)}`);
  return e;
}
function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n') };
}

describe('malformed JSON', () => {
  it('names the file, line and column of an error inside a record', async () => {
    const fx = await buildFixture();
    const text = await readFile(table(fx, 'sample'), 'utf8');
    const at = text.indexOf('"scene_token":', text.indexOf(fx.samples[1]!));
    const broken = text.slice(0, at) + '"scene_token" ' + text.slice(at + '"scene_token":'.length);
    await writeFile(table(fx, 'sample'), broken);
    const e = await rejection(open(fx));
    const where = lineCol(broken, broken.indexOf('"', at + '"scene_token"'.length)); // the value's opening quote
    expect(e).toMatchObject({ file: table(fx, 'sample'), line: where.line, column: where.column });
    expect(e.message).toContain(`sample.json at line ${where.line}, column ${where.column}: expected ':' after a property name`);
  });

  it('names the position of a missing comma between records and of a truncated file', async () => {
    const fx = await buildFixture();
    const text = await readFile(table(fx, 'ego_pose'), 'utf8');
    const at = text.indexOf('},\n {');
    await writeFile(table(fx, 'ego_pose'), text.slice(0, at + 1) + '\n' + text.slice(at + 2)); // drop the comma
    let e = await rejection(open(fx));
    expect(e.file).toBe(table(fx, 'ego_pose'));
    expect(e.line).toBe(lineCol(text, at).line + 2);
    expect(e.column).toBe(2);
    expect(e.message).toMatch(/expected ',' or '\]' after a record, found '\{'/);

    await writeFile(table(fx, 'ego_pose'), text.slice(0, 200));
    e = await rejection(open(fx));
    expect(e.message).toMatch(/ego_pose\.json .*unexpected end of file inside the record that starts at line 2/);

    await writeFile(table(fx, 'ego_pose'), '{"token": "x"}');
    e = await rejection(open(fx));
    expect(e.message).toMatch(/line 1, column 1: expected '\['/);
  });

  it('reports a malformed splits.json and a missing table file', async () => {
    const fx = await buildFixture();
    await writeFile(join(fx.dataroot, fx.version, 'splits.json'), '{\n  "a": ["scene-0001",]\n}');
    let e = await rejection(open(fx));
    expect(e).toMatchObject({ file: join(fx.dataroot, fx.version, 'splits.json'), line: 2, column: 22 });
    await rm(table(fx, 'visibility'));
    e = await rejection(open(fx));
    expect(e.file).toBe(table(fx, 'visibility'));
    expect(e.message).toMatch(/Table file not found/);
  });
});

describe('links', () => {
  it('names table, record, field and the missing token of a dangling link', async () => {
    const fx = await buildFixture();
    await editTable(fx, 'sample_data', (rows) => {
      rows[3]!.ego_pose_token = 'ffffffffffffffffffffffffffffffff';
    });
    const e = await rejection(open(fx));
    expect(e).toMatchObject({ table: 'sample_data', token: fx.lidarChain[3], field: 'ego_pose_token', found: 'ffffffffffffffffffffffffffffffff' });
    expect(e.message).toContain(`sample_data.json: record ${fx.lidarChain[3]} field "ego_pose_token" links to ego_pose token "ffffffffffffffffffffffffffffffff"`);
  });

  it('checks token arrays and allows "" only where the devkit does', async () => {
    let fx = await buildFixture();
    await editTable(fx, 'sample_annotation', (rows) => {
      rows[0]!.attribute_tokens = ['nope'];
    });
    let e = await rejection(open(fx));
    expect(e).toMatchObject({ table: 'sample_annotation', token: fx.car[0], field: 'attribute_tokens[0]', found: 'nope' });

    fx = await buildFixture();
    await editTable(fx, 'instance', (rows) => {
      rows[0]!.category_token = '';
    });
    e = await rejection(open(fx));
    expect(e).toMatchObject({ table: 'instance', field: 'category_token', found: '""' });

    fx = await buildFixture();
    await editTable(fx, 'instance', (rows) => {
      rows[0]!.first_annotation_token = '';
    });
    e = await rejection(open(fx));
    expect(e).toMatchObject({ table: 'instance', field: 'first_annotation_token' });

    fx = await buildFixture(); // an empty chain may have empty first/last tokens
    await editTable(fx, 'instance', (rows) => {
      rows.push({ token: 'empty_instance', category_token: rows[0]!.category_token, nbr_annotations: 0, first_annotation_token: '', last_annotation_token: '' });
    });
    await expect(open(fx)).resolves.toBeDefined();
  });

  it('requires every log to be covered by a map and the map file to exist', async () => {
    let fx = await buildFixture();
    await editTable(fx, 'map', (rows) => {
      rows[0]!.log_tokens = [];
    });
    let e = await rejection(open(fx));
    expect(e).toMatchObject({ table: 'log', field: 'map_token' });

    fx = await buildFixture();
    await rm(join(fx.dataroot, 'maps', 'map0.png'));
    e = await rejection(open(fx));
    expect(e).toMatchObject({ table: 'map', field: 'filename', file: join(fx.dataroot, 'maps', 'map0.png') });
    await expect(openNuScenes({ dataroot: fx.dataroot, version: fx.version, checkMapFiles: false })).resolves.toBeDefined();
  });

  it('rejects duplicate tokens and a missing version folder', async () => {
    let fx = await buildFixture();
    await editTable(fx, 'sensor', (rows) => {
      rows[1]!.token = rows[0]!.token;
    });
    expect(await rejection(open(fx))).toMatchObject({ table: 'sensor', field: 'token' });
    fx = await buildFixture();
    const e = await rejection(openNuScenes({ dataroot: fx.dataroot, version: 'v1.0-trainval' }));
    expect(e.message).toMatch(/Database version not found: .*v1\.0-trainval/);
  });
});

describe('data files', () => {
  it('names path, sample_data token and field of a missing file', async () => {
    const fx = await buildFixture();
    const nusc = await open(fx);
    const cam = nusc.sampleDataToken(fx.samples[0]!, 'CAM_BACK_LEFT');
    const path = nusc.getSampleDataPath(cam);
    await rm(path);
    const e = await rejection(loadFrame(nusc, fx.samples[0]!, { lidar: false }));
    expect(e).toMatchObject({ file: path, table: 'sample_data', token: cam, field: 'filename' });
    expect(e.message).toContain(`Missing file ${path}`);
    // a missing sweep is reported the same way
    const sweepPath = nusc.getSampleDataPath(fx.lidarChain[0]!);
    await rm(sweepPath);
    expect(await rejection(loadFrame(nusc, fx.samples[0]!, { cameras: false }))).toMatchObject({ file: sweepPath, token: fx.lidarChain[0], field: 'filename' });
  });

  it('rejects a .pcd.bin whose size is not a multiple of 20 bytes', async () => {
    const fx = await buildFixture();
    const nusc = await open(fx);
    const path = nusc.getSampleDataPath(fx.lidarKeyframes[1]!);
    const size = (await readFile(path)).length;
    await truncate(path, size - 3);
    const e = await rejection(loadFrame(nusc, fx.samples[1]!, { cameras: false }));
    expect(e).toMatchObject({ file: path, table: 'sample_data', token: fx.lidarKeyframes[1], field: 'filename', found: `${size - 3} bytes` });
    expect(e.message).toMatch(/not a multiple of 20/);
  });

  it('rejects an image that does not decode', async () => {
    const fx = await buildFixture();
    const nusc = await open(fx);
    const cam = nusc.sampleDataToken(fx.samples[2]!, 'CAM_FRONT');
    const path = nusc.getSampleDataPath(cam);
    await writeFile(path, Buffer.from('this is not a jpeg at all'));
    let e = await rejection(loadFrame(nusc, fx.samples[2]!, { lidar: false }));
    expect(e).toMatchObject({ file: path, table: 'sample_data', token: cam, field: 'filename' });
    expect(e.message).toMatch(/Cannot decode image/);
    // a truncated JPEG
    const good = nusc.getSampleDataPath(nusc.sampleDataToken(fx.samples[1]!, 'CAM_FRONT'));
    await writeFile(path, (await readFile(good)).subarray(0, 300));
    e = await rejection(loadFrame(nusc, fx.samples[2]!, { lidar: false }));
    expect(e).toMatchObject({ file: path, token: cam });
  });

  it('rejects a labels.npz missing an array, with a bad shape, or absent', async () => {
    const fx = await buildFixture();
    const nusc = await open(fx);
    const gts = join(fx.dataroot, 'gts');
    const file = join(gts, fx.sceneName, fx.samples[0]!, 'labels.npz');
    const grid = () => ({ data: new Uint8Array(200 * 200 * 16), shape: [200, 200, 16] });
    let e = await rejection(loadFrame(nusc, fx.samples[0]!, { cameras: false, lidar: false, occGts: gts }));
    expect(e).toMatchObject({ file, field: 'occ labels.npz' });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(gts, fx.sceneName, fx.samples[0]!), { recursive: true });
    await writeFile(file, writeNpz({ semantics: grid(), mask_lidar: grid() }));
    e = await rejection(loadOccLabels(file, fx.samples[0]));
    expect(e).toMatchObject({ file, field: 'mask_camera', token: fx.samples[0] });
    expect(e.message).toContain('has no array "mask_camera"');
    await writeFile(file, writeNpz({ semantics: { data: new Uint8Array(10), shape: [10] }, mask_lidar: grid(), mask_camera: grid() }));
    e = await rejection(loadOccLabels(file));
    expect(e).toMatchObject({ field: 'semantics', found: '(10)' });
    const bad = grid();
    bad.data[5] = 18;
    await writeFile(file, writeNpz({ semantics: bad, mask_lidar: grid(), mask_camera: grid() }));
    e = await rejection(loadOccLabels(file));
    expect(e.message).toMatch(/holds 18 at \[0, 0, 5\], expected 0\.\.17/);
  });
});
