import type { MalformedCase } from './types.js';

/** Malformed vmdk images; see test/corpus/types.ts. */
export const vmdkCases: MalformedCase[] = [];
