/**
 * The states an import task walks, as AWS reports them, and the Progress
 * each one shows. AWS documents only Status (active, deleting, deleted,
 * completed); the sub-states come in StatusMessage and were observed by
 * people polling real tasks (shared reference §1.7). Progress values follow
 * those observations: they are AWS's estimates, not measurements, except
 * while converting, where ferry moves them with the bytes written.
 */

/** What an ImportImage task reports in StatusMessage while it is active, in order. */
export const IMAGE_STEPS = [
  'pending',
  'validating',
  'validated',
  'converting',
  'updating',
  'updated',
  'preparing to boot',
  'booting',
  'booted',
  'preparing ami',
] as const;

/** What an ImportSnapshot task reports in StatusMessage while it is active, in order. */
export const SNAPSHOT_STEPS = [
  'pending',
  'validating',
  'validated',
  'downloading/converting',
] as const;

export type ImageStep = (typeof IMAGE_STEPS)[number];
export type SnapshotStep = (typeof SNAPSHOT_STEPS)[number];
export type ImportStep = ImageStep | SnapshotStep;

/** AWS's Status field. */
export type ImportStatus = 'active' | 'deleting' | 'deleted' | 'completed';

/** Progress at the start of each step (a string on the wire, like AWS's). */
export const IMAGE_PROGRESS: Readonly<Record<ImageStep, number>> = {
  pending: 2,
  validating: 4,
  validated: 6,
  converting: 19,
  updating: 41,
  updated: 45,
  'preparing to boot': 52,
  booting: 59,
  booted: 70,
  'preparing ami': 76,
};

export const SNAPSHOT_PROGRESS: Readonly<Record<SnapshotStep, number>> = {
  pending: 3,
  validating: 10,
  validated: 32,
  'downloading/converting': 33,
};

/** The Progress range converting walks through as bytes are written: [start, end). */
export function convertRange(kind: 'image' | 'snapshot'): readonly [number, number] {
  return kind === 'image' ? [IMAGE_PROGRESS.converting, IMAGE_PROGRESS.updating - 1] : [33, 99];
}
