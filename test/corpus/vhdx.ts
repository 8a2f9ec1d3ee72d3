import type { MalformedCase } from './types.js';

/** Malformed vhdx images; see test/corpus/types.ts. */
export const vhdxCases: MalformedCase[] = [];
