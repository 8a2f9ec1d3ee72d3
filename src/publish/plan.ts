/**
 * The plan of a publish as a graph: the run's own steps (ingest, render,
 * inspect) once, then each placement's steps in order, all placements side
 * by side. `ferry publish --dry-run` prints it; the run walks it.
 */

export type Method = 'ebs-direct' | 'vm-import' | 'glance';

export interface PlanNode {
  /** `step` for the run's steps, `placement:step` for a placement's. */
  readonly id: string;
  readonly step: string;
  readonly placement: string | null;
  /** Ids of the nodes that must be done first. */
  readonly after: readonly string[];
}

export interface PlanInput {
  /** ingest: the stream's source is read first (STREAM without @REV). */
  readonly ingest: boolean;
  /** render: a stream revision (an --image file is used as it is). */
  readonly render: boolean;
  readonly placements: ReadonlyArray<{ readonly key: string; readonly method: Method }>;
  readonly verify: boolean;
}

export const METHOD_STEPS: Readonly<Record<Method, readonly string[]>> = {
  'ebs-direct': ['find', 'snapshot', 'register', 'tag', 'share'],
  'vm-import': ['find', 'upload', 'import', 'tag', 'share'],
  glance: ['find', 'prepare', 'upload', 'share', 'copy'],
};

export function makePlan(input: PlanInput): PlanNode[] {
  const nodes: PlanNode[] = [];
  let last: string[] = [];
  const add = (step: string, placement: string | null, after: readonly string[]) => {
    const id = placement === null ? step : `${placement}:${step}`;
    nodes.push({ id, step, placement, after });
    return id;
  };
  if (input.ingest) last = [add('ingest', null, last)];
  if (input.render) last = [add('render', null, last)];
  last = [add('inspect', null, last)];
  const head = last;
  for (const p of input.placements) {
    let prev = head;
    const steps = [
      ...METHOD_STEPS[p.method],
      ...(input.verify && p.method === 'ebs-direct' ? ['verify'] : []),
    ];
    for (const step of steps) prev = [add(step, p.key, prev)];
  }
  return nodes;
}

/** The plan as text: the run's steps, then one line per placement. */
export function formatPlan(nodes: readonly PlanNode[]): string {
  const lines: string[] = [];
  const run = nodes.filter((n) => n.placement === null).map((n) => n.step);
  lines.push(run.join(' → '));
  const byPlacement = new Map<string, string[]>();
  for (const n of nodes) {
    if (n.placement === null) continue;
    const list = byPlacement.get(n.placement) ?? [];
    list.push(n.step);
    byPlacement.set(n.placement, list);
  }
  const width = Math.max(0, ...[...byPlacement.keys()].map((k) => k.length));
  for (const [key, steps] of byPlacement)
    lines.push(`  └ ${key.padEnd(width)}  ${steps.join(' → ')}`);
  return `${lines.join('\n')}\n`;
}
