/**
 * A task's failure as AWS reports it: the text goes into StatusMessage of a
 * deleting, then deleted task. Only the import steps throw it; anything
 * else that escapes a step is reported as AWS reports its own faults.
 */
export class ImportFailure extends Error {
  override readonly name = 'ImportFailure';
}

/** What AWS says when something on its side broke during conversion (observed wording). */
export const SERVER_ERROR = 'ServerError: an internal error has occurred during conversion.';

/** S3 could not give the object to the import role (AWS's wording, observed). */
export const NO_ACCESS =
  'ClientError: Disk validation failed [We do not have access to the given resource. Reason 403 Forbidden]';

/**
 * The guest did not come up. AWS documents this text for Windows, whose
 * boot check it describes; for other platforms the word "Windows" is left out.
 */
export function firstBootFailure(platform: string | null): string {
  return `FirstBootFailure: This import request failed because the ${platform === 'Windows' ? 'Windows ' : ''}instance failed to boot and establish network connectivity.`;
}
