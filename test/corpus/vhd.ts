import type { MalformedCase } from './types.js';

/** Malformed vhd images; see test/corpus/types.ts. */
export const vhdCases: MalformedCase[] = [];
