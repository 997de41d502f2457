import { list } from '@bevzoo/core';
import type { ParsedArgs } from '../args.js';

/** `bevzoo matrix`: every compatible registered combination on the synthetic dataset. */
export async function matrixCommand(_args: ParsedArgs): Promise<void> {
  const teachers = list('teacher'), students = list('student'), distillers = list('distiller');
  if (!students.length) {
    process.stdout.write(
      `bevzoo matrix: no model is registered yet (teachers: ${teachers.length}, students: ${students.length}, distillers: ${distillers.length}).\n` +
        'Install teacher, student and distiller packages beside @bevzoo/runner, or pass --plugin <package or path>.\n',
    );
    return;
  }
  throw new Error('bevzoo matrix: not available in this build');
}
