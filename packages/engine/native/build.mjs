#!/usr/bin/env node
// Builds the native kernels of @bevzoo/engine (native/build/bevzoo_native.node) against Debian's libtorch
// (`apt-get install libtorch-dev`). Runs at install; never fails it: without a compiler, Node's headers or
// libtorch it says what is missing and the engine keeps its wasm kernels.
//   node native/build.mjs            build when possible (skips when the addon is up to date)
//   node native/build.mjs --force    rebuild
//   node native/build.mjs --strict   exit 1 when it cannot build (CI)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.join(here, 'bevzoo_native.cc');
const out = path.join(here, 'build', 'bevzoo_native.node');
const force = process.argv.includes('--force');
const strict = process.argv.includes('--strict');
const say = (s) => process.stderr.write(`@bevzoo/engine native kernels: ${s}\n`);

function skip(why) {
  say(`not built (${why}); the engine uses its wasm kernels. To turn the native kernels on: \`apt-get install libtorch-dev\`, then \`node ${path.relative(process.cwd(), fileURLToPath(import.meta.url)) || 'native/build.mjs'}\``);
  process.exit(strict ? 1 : 0);
}

if (process.env.BEVZOO_NATIVE_BUILD === '0') skip('BEVZOO_NATIVE_BUILD=0');
if (process.platform !== 'linux') skip(`the build script knows Linux only, found ${process.platform}`);

// libtorch: Debian's libtorch-dev puts the headers under /usr/include and the libraries in the multiarch folder.
const prefix = process.env.BEVZOO_LIBTORCH ?? '/usr';
const atenHeader = path.join(prefix, 'include', 'ATen', 'ATen.h');
if (!existsSync(atenHeader)) skip(`libtorch headers not found (${atenHeader}); set BEVZOO_LIBTORCH to a libtorch folder with include/ and lib/`);
const libDirs = [path.join(prefix, 'lib'), path.join(prefix, 'lib', `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`)];
const libDir = libDirs.find((d) => existsSync(path.join(d, 'libtorch_cpu.so')));
if (!libDir) skip(`libtorch_cpu.so not found in ${libDirs.join(' or ')}`);

const nodeHeaders = [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((d) => existsSync(path.join(d, 'node_api.h')));
if (!nodeHeaders) skip(`Node's headers (node_api.h) not found beside ${process.execPath} or in /usr/include/node`);
let addonApi;
try {
  addonApi = createRequire(import.meta.url)('node-addon-api').include_dir;
} catch (e) {
  skip(`node-addon-api not installed (${String(e.message).split('\n')[0]})`);
}
const cxx = process.env.CXX ?? 'g++';
if (spawnSync(cxx, ['--version']).status !== 0) skip(`no C++ compiler (${cxx}); apt-get install g++`);

if (!force && existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) {
  say(`up to date (${path.relative(process.cwd(), out)})`);
  process.exit(0);
}

mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = [
  '-O2', '-shared', '-fPIC', '-std=c++17', '-fopenmp', '-fvisibility=hidden', '-DNAPI_CPP_EXCEPTIONS', '-DNAPI_VERSION=8',
  `-I${nodeHeaders}`, `-I${addonApi}`, `-I${path.join(prefix, 'include')}`, `-I${path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include')}`,
  source, '-o', tmp, `-L${libDir}`, `-Wl,-rpath,${libDir}`, '-ltorch', '-ltorch_cpu', '-lc10',
];
say(`building with ${cxx} against ${libDir}/libtorch_cpu.so (about 30 s)…`);
const t0 = Date.now();
try {
  execFileSync(cxx, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  renameSync(tmp, out);
} catch (e) {
  rmSync(tmp, { force: true });
  skip(`${cxx} failed: ${String(e.message).split('\n')[0]}`);
}
say(`built ${path.relative(process.cwd(), out)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
