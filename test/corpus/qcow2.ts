import type { MalformedCase } from './types.js';

/** Malformed qcow2 images; see test/corpus/types.ts. */
export const qcow2Cases: MalformedCase[] = [];
