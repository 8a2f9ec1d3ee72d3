import { FerryError } from '../../errors/index.js';

/** The planner's errors: input XFS cannot hold, and limits of the filesystem or of this writer. */
export function input(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot lay out the filesystem: ${reason}`);
}

export function limit(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_LIMIT', `Cannot lay out the filesystem: ${reason}`);
}
