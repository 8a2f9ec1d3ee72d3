import { ovaCases } from './ova.js';
import { qcow2Cases } from './qcow2.js';
import type { MalformedCase } from './types.js';
import { vdiCases } from './vdi.js';
import { vhdCases } from './vhd.js';
import { vhdxCases } from './vhdx.js';
import { vmdkCases } from './vmdk.js';

export type { MalformedCase } from './types.js';

/** Every malformed case, by format. */
export const MALFORMED: Readonly<Record<string, readonly MalformedCase[]>> = {
  qcow2: qcow2Cases,
  vmdk: vmdkCases,
  vhd: vhdCases,
  vhdx: vhdxCases,
  vdi: vdiCases,
  ova: ovaCases,
};
