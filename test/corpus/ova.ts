import type { MalformedCase } from './types.js';

/** Malformed ova images; see test/corpus/types.ts. */
export const ovaCases: MalformedCase[] = [];
