import type { Checkpoint } from '../../src/publish/types.js';

/** A Checkpoint kept in memory; `saves` records every value saved, in order. */
export function memoryCheckpoint<T>(initial?: T): {
  readonly checkpoint: Checkpoint<T>;
  readonly saves: T[];
  value(): T | undefined;
} {
  let value = initial;
  const saves: T[] = [];
  return {
    checkpoint: {
      load: async () => value,
      save: async (v) => {
        value = v;
        saves.push(v);
      },
    },
    saves,
    value: () => value,
  };
}
