/** Typed events the disk core emits; front ends render them (the core never prints). */
export type DiskEvent =
  | {
      readonly type: 'convert-start';
      readonly from: string;
      readonly to: string;
      readonly virtualSize: number;
    }
  | {
      readonly type: 'progress';
      readonly operation: 'convert' | 'compare' | 'render';
      readonly done: number;
      readonly total: number;
    }
  | {
      readonly type: 'convert-done';
      readonly fileSize: number;
      readonly dataBytes: number;
      readonly seconds: number;
    };

export type DiskEventListener = (event: DiskEvent) => void;
