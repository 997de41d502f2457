import { defaultPresetOf, describeFeature, list, resolveConfig, tryAssemble } from '@bevzoo/core';
import type { PluginLoad } from '../discover.js';

/** The plugin packages and files imported (or not) by this process, and where from. */
function pluginLoads(loads: readonly PluginLoad[]): string[] {
  const out = [`plugin packages (${loads.filter((l) => !l.error).length} loaded${loads.some((l) => l.error) ? `, ${loads.filter((l) => l.error).length} failed` : ''}):`];
  for (const l of loads)
    out.push(`  ${l.error ? 'FAILED ' : ''}${l.name}${l.version ? `@${l.version}` : ''}  ${l.dir}  (${l.from})${l.error ? `: ${l.error}` : ''}`);
  return out;
}

/**
 * `bevzoo list`: the plugin packages loaded and where from, registered plugins, their presets (and features with
 * --verbose), and which combinations assemble.
 */
export function listCommand(opts: { verbose?: boolean; plugins?: readonly PluginLoad[] } = {}): string {
  const out: string[] = opts.plugins ? pluginLoads(opts.plugins) : [];
  if (!list().length)
    return [...out, 'No plugins are registered. Add plugin packages to your project\'s dependencies (beside @bevzoo/runner), or pass --plugin <package or path>.'].join('\n');
  for (const kind of ['teacher', 'student', 'distiller'] as const) {
    const ps = list(kind);
    out.push(`${kind}s (${ps.length}):`);
    for (const p of ps) {
      const presets = Object.keys(p.presets).map((n) => (n === defaultPresetOf(p) ? `${n}*` : n)).join(', ');
      out.push(`  ${p.name.padEnd(18)} ${p.task}  ${p.package}@${p.version}  presets: ${presets}`);
      out.push(`  ${''.padEnd(18)}      ${p.description}`);
      if (opts.verbose && p.kind !== 'distiller')
        for (const [k, f] of Object.entries(p.provides(resolveConfig(p).config))) out.push(`  ${''.padEnd(18)}      feature ${k}: ${describeFeature(f)}`);
    }
  }
  out.push('combinations (teacher × student × distiller; * = default presets):');
  let n = 0;
  for (const d of list('distiller'))
    for (const t of list('teacher'))
      for (const s of list('student')) {
        if (t.task !== d.task || s.task !== d.task) continue;
        const r = tryAssemble({ teacher: { plugin: t }, student: { plugin: s }, distiller: { plugin: d } });
        n++;
        out.push(`  ${r.ok ? 'ok' : 'no'}  ${t.name} × ${s.name} × ${d.name}`);
        if (!r.ok) out.push(...r.problems.map((p) => `        ${p}`));
      }
  if (!n) out.push('  (none yet: a combination needs a teacher, a student and a distiller of the same task)');
  return out.join('\n');
}
