import type { MalformedCase } from './types.js';

/** Malformed vdi images; see test/corpus/types.ts. */
export const vdiCases: MalformedCase[] = [];
