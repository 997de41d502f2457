import { resolveConfig } from './config.js';
import { AssemblyError } from './errors.js';
import { describeFeature, describeGrid, sameArea, sameGrid, type FeatureMap, type FeatureSpec } from './features.js';
import type { DistillerPlugin, FeatureRequirement, StudentPlugin, TeacherPlugin } from './plugin.js';
import { get } from './registry.js';

/** A component named in a combination: by registered name or as a plugin object, with preset and overrides. */
export interface ComponentChoice<P> {
  plugin: string | P;
  preset?: string;
  overrides?: Record<string, unknown>;
}

export interface Resolved<P, C = any> {
  plugin: P;
  preset: string;
  config: C;
}

export interface Assembly {
  teacher?: Resolved<TeacherPlugin> & { features: FeatureMap };
  student: Resolved<StudentPlugin> & { features: FeatureMap };
  distiller?: Resolved<DistillerPlugin> & { requirements: FeatureRequirement[] };
  task: 'det' | 'occ';
}

function pick<P>(kind: 'teacher' | 'student' | 'distiller', c: ComponentChoice<P>): P {
  return (typeof c.plugin === 'string' ? get(kind, c.plugin) : c.plugin) as P;
}

/** Check one requirement against what the two sides provide; returns the problems found. */
export function checkRequirement(req: FeatureRequirement, provided: { teacher: FeatureMap; student: FeatureMap }, names: { teacher: string; student: string }): string[] {
  const f: FeatureSpec | undefined = provided[req.side][req.name];
  const who = `${req.side} "${names[req.side]}"`;
  if (!f) {
    const avail = Object.keys(provided[req.side]);
    return [`${who} does not provide feature "${req.name}"${req.why ? ` (needed for ${req.why})` : ''}; it provides: ${avail.join(', ') || '(nothing)'}`];
  }
  const problems: string[] = [];
  if (req.kind && f.kind !== req.kind) problems.push(`${who} feature "${req.name}" is a ${f.kind} feature; expected ${req.kind}`);
  if (req.channels !== undefined && f.channels !== req.channels) problems.push(`${who} feature "${req.name}" has ${f.channels} channels; expected ${req.channels}`);
  for (const [rel, test, what] of [
    [req.sameGridAs, sameGrid, 'the grid'],
    [req.sameAreaAs, sameArea, 'the area'],
  ] as const) {
    if (!rel) continue;
    const other = provided[rel.side][rel.name];
    if (!other) problems.push(`${rel.side} "${names[rel.side]}" does not provide feature "${rel.name}" (to compare ${what} of "${req.name}" with)`);
    else if (!test(f.grid, other.grid))
      problems.push(`${who} feature "${req.name}" (${describeGrid(f.grid)}) does not share ${what} of ${rel.side} feature "${rel.name}" (${describeGrid(other.grid)})${req.why ? `; needed for ${req.why}` : ''}`);
  }
  return problems;
}

/**
 * Resolve and check a combination before anything runs. A baseline is a student alone; a distillation needs
 * teacher, student and distiller of one task, and every feature the distiller asks for.
 */
export function assemble(choice: {
  teacher?: ComponentChoice<TeacherPlugin>;
  student: ComponentChoice<StudentPlugin>;
  distiller?: ComponentChoice<DistillerPlugin>;
}): Assembly {
  const problems: string[] = [];
  const sp = pick<StudentPlugin>('student', choice.student);
  const s = resolveConfig(sp, choice.student);
  const student = { plugin: sp, ...s, features: sp.provides(s.config) };
  let teacher: Assembly['teacher'];
  if (choice.teacher) {
    const tp = pick<TeacherPlugin>('teacher', choice.teacher);
    const t = resolveConfig(tp, choice.teacher);
    teacher = { plugin: tp, ...t, features: tp.provides(t.config) };
    if (tp.task !== sp.task) problems.push(`teacher "${tp.name}" is a ${tp.task} model but student "${sp.name}" is a ${sp.task} model`);
  }
  let distiller: Assembly['distiller'];
  if (choice.distiller) {
    const dp = pick<DistillerPlugin>('distiller', choice.distiller);
    const d = resolveConfig(dp, choice.distiller);
    if (!teacher) problems.push(`distiller "${dp.name}" needs a teacher`);
    if (dp.task !== sp.task) problems.push(`distiller "${dp.name}" is for ${dp.task} but student "${sp.name}" is a ${sp.task} model`);
    const provided = { teacher: teacher?.features ?? {}, student: student.features };
    const requirements = teacher && dp.task === sp.task ? dp.requires(d.config, provided) : [];
    const names = { teacher: teacher?.plugin.name ?? '(none)', student: sp.name };
    for (const r of requirements) problems.push(...checkRequirement(r, provided, names));
    distiller = { plugin: dp, ...d, requirements };
  } else if (teacher) problems.push(`teacher "${teacher.plugin.name}" given without a distiller`);
  if (problems.length) {
    const title = [teacher?.plugin.name, sp.name, distiller?.plugin.name].filter(Boolean).join(' × ');
    throw new AssemblyError(`cannot assemble ${title}:\n${problems.map((p) => `  - ${p}`).join('\n')}`, problems);
  }
  return { teacher, student, distiller, task: sp.task };
}

/** Whether a combination assembles, without throwing (for `bevzoo list` and the matrix). */
export function tryAssemble(choice: Parameters<typeof assemble>[0]): { ok: true; assembly: Assembly } | { ok: false; problems: string[] } {
  try {
    return { ok: true, assembly: assemble(choice) };
  } catch (e) {
    if (e instanceof AssemblyError) return { ok: false, problems: e.problems };
    throw e;
  }
}

export { describeFeature };
