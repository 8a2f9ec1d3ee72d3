/**
 * The two spellings of a permission change (createVolumePermission,
 * launchPermission): `Prefix.Add.N.UserId|Group` and `.Remove.N…`, or the
 * older `OperationType` with `UserId.N` and `UserGroup.N`.
 */
import { invalidCombination, invalidValue } from './errors.js';
import type { QueryReader } from './query-reader.js';

export interface PermissionEdit {
  readonly addUsers: string[];
  readonly removeUsers: string[];
  readonly addPublic: boolean;
  readonly removePublic: boolean;
}

function readItems(q: QueryReader, prefix: string): { users: string[]; all: boolean } {
  const users: string[] = [];
  let all = false;
  for (const item of q.structs(prefix)) {
    const user = item.string('UserId', { max: 64 });
    const group = item.string('Group', { max: 64 });
    if (item.has('OrganizationArn') || item.has('OrganizationalUnitArn'))
      throw invalidValue('Sharing with organizations is not supported by this endpoint.');
    if (user !== undefined) users.push(user);
    if (group !== undefined) {
      if (group !== 'all')
        throw invalidValue(`Value (${group}) for parameter group is invalid. Expected: 'all'.`);
      all = true;
    }
  }
  return { users, all };
}

/** The change a Modify…Attribute request asks for, or undefined when it names none. */
export function readPermissionEdit(q: QueryReader, structName: string): PermissionEdit | undefined {
  const add = readItems(q, `${structName}.Add`);
  const remove = readItems(q, `${structName}.Remove`);
  const op = q.enumValue('OperationType', ['add', 'remove'] as const);
  const users = q.list('UserId', 1000, 64);
  const groups = q.list('UserGroup', 10, 64);
  for (const g of groups)
    if (g !== 'all')
      throw invalidValue(`Value (${g}) for parameter UserGroup is invalid. Expected: 'all'.`);
  if (op === undefined && (users.length > 0 || groups.length > 0))
    throw invalidCombination('UserId and UserGroup need an OperationType (add or remove).');
  if (op === 'add') {
    add.users.push(...users);
    add.all ||= groups.length > 0;
  } else if (op === 'remove') {
    remove.users.push(...users);
    remove.all ||= groups.length > 0;
  }
  if (add.users.length + remove.users.length === 0 && !add.all && !remove.all) return undefined;
  return {
    addUsers: add.users,
    removeUsers: remove.users,
    addPublic: add.all,
    removePublic: remove.all,
  };
}

/** The items of a createVolumePermission or launchPermission list. */
export function permissionItems(
  users: readonly string[],
  isPublic: boolean,
): Array<Record<string, string>> {
  return [...(isPublic ? [{ group: 'all' }] : []), ...users.map((u) => ({ userId: u }))];
}
