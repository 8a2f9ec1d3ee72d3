/** EC2 resource ids: `ami-`/`snap-` and 17 lowercase hex digits, as AWS makes them today. */
import { randomBytes } from 'node:crypto';

/** New-style ids have 17 hex digits; older ones (still valid) 8. */
const ID = /^(ami|snap|aki|ari|i|vol|import-ami|import-snap)-([0-9a-f]{8}|[0-9a-f]{17})$/;

export function newId(prefix: 'ami' | 'snap'): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

/** Is `id` a well-formed id with this prefix? */
export function isId(id: string, prefix: string): boolean {
  const m = ID.exec(id);
  return m !== null && m[1] === prefix;
}

export const ACCOUNT_ID = /^\d{12}$/;
