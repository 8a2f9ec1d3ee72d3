/**
 * Why AWS refused an import, from ferry's side: ferry inspect run on the
 * local image with the aws-import target. Its findings are worded for
 * people; where one records the very words AWS answered, that one is named
 * first. The result is a hint for the error, never a replacement for AWS's
 * own message.
 */
import { openImage } from '../../disk/index.js';
import { type Finding, inspectImage, type Verdict } from '../../inspect/index.js';

export interface ImportExplanation {
  /** inspect's verdict for aws-import, or null when inspect could not run. */
  readonly verdict: Verdict | null;
  /** The aws-import findings (errors first), as inspect made them. */
  readonly findings: readonly Finding[];
  /** The text for the error's hint. */
  readonly hint: string;
}

/** Inspects `path` for aws-import and words what it found against AWS's `awsMessage`. */
export async function explainImportFailure(
  path: string,
  awsMessage: string,
  signal?: AbortSignal,
): Promise<ImportExplanation> {
  let findings: Finding[];
  let verdict: Verdict;
  try {
    const image = await openImage(path, signal === undefined ? {} : { signal });
    try {
      const report = await inspectImage(image, path, {
        targets: ['aws-import'],
        ...(signal === undefined ? {} : { signal }),
      });
      findings = report.findings.filter(
        (f) => f.targets.includes('aws-import') && f.severity !== 'info',
      );
      verdict = report.verdicts['aws-import'] ?? 'pass';
    } finally {
      await image.close();
    }
  } catch (error) {
    if (signal?.aborted === true) throw error;
    return {
      verdict: null,
      findings: [],
      hint: `ferry inspect could not read ${path} to explain it (${(error as Error).message}).`,
    };
  }
  const rank = (f: Finding): number =>
    (f.cloudMessage !== null && awsMessage.includes(f.cloudMessage.replace(/\.$/, '')) ? 0 : 2) +
    (f.severity === 'error' ? 0 : 1);
  findings.sort((a, b) => rank(a) - rank(b));
  if (findings.length === 0)
    return {
      verdict,
      findings,
      hint: `ferry inspect ${path} --target aws-import finds nothing VM Import would refuse; AWS's message is all there is to go on.`,
    };
  const lines = findings.map(
    (f) =>
      `${f.code} (${f.severity}): ${f.message}${f.cloudMessage !== null && rank(f) < 2 ? ' (what AWS answered)' : ''}`,
  );
  return {
    verdict,
    findings,
    hint: `ferry inspect ${path} --target aws-import says ${verdict}: ${lines.join('; ')}.`,
  };
}
