import { randomBytes } from 'node:crypto';
import type { ImportKind } from './task-record.js';

/** import-ami- or import-snap- and 17 hex digits, as AWS's ids look today. */
export const TASK_ID = /^import-(ami|snap)-[0-9a-f]{17}$/;

export function newTaskId(kind: ImportKind): string {
  return `import-${kind === 'image' ? 'ami' : 'snap'}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function kindOfId(id: string): ImportKind | undefined {
  const m = TASK_ID.exec(id);
  return m === null ? undefined : m[1] === 'ami' ? 'image' : 'snapshot';
}
