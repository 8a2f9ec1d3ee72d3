/**
 * What RegisterImage needs to know about the image, from ferry inspect:
 * architecture, boot mode, ENA (and Glance its image properties). AWS's defaults are traps (paravirtual, i386,
 * no ENA), so every field is sent explicitly.
 */

import { openImage } from '../disk/index.js';
import { type InspectReport, inspectImage } from '../inspect/index.js';
import { inspectProperties } from './openstack/glance-properties.js';

export interface ImageFacts {
  readonly architecture: 'x86_64' | 'arm64';
  /** Absent when no boot loader was found (the cloud's default applies). */
  readonly bootMode?: 'legacy-bios' | 'uefi' | 'uefi-preferred';
  readonly enaSupport: boolean;
  readonly rootDeviceName: string;
  /** What inspect said, for the history and error explanations. */
  readonly os: string | null;
  readonly notes: readonly string[];
  /** The Glance image properties inspect supports (os_distro, architecture, hw_*); absent in older journals. */
  readonly openstack?: Readonly<Record<string, string>>;
}

export function factsFromReport(report: InspectReport): ImageFacts {
  const notes: string[] = [];
  const kernel = report.kernels.find((k) => k.default) ?? report.kernels[0];
  const arch = report.os?.arch ?? kernel?.arch ?? null;
  let architecture: ImageFacts['architecture'] = 'x86_64';
  if (arch === 'aarch64' || arch === 'arm64') architecture = 'arm64';
  else if (arch !== 'x86_64' && arch !== 'amd64')
    notes.push(`architecture not found (${arch ?? 'none'}): x86_64 assumed`);
  const fw = report.bootloader.firmware;
  const bootMode =
    fw.includes('uefi') && fw.includes('bios')
      ? 'uefi-preferred'
      : fw.includes('uefi')
        ? 'uefi'
        : fw.includes('bios')
          ? 'legacy-bios'
          : undefined;
  if (bootMode === undefined)
    notes.push('no boot loader found: the cloud default boot mode applies');
  const ena = kernel?.drivers.ena;
  const enaSupport = ena === 'builtin' || ena === 'module';
  if (kernel !== undefined && !enaSupport)
    notes.push('the kernel has no ENA driver: ENA support is off');
  return {
    architecture,
    ...(bootMode === undefined ? {} : { bootMode }),
    enaSupport,
    rootDeviceName: '/dev/xvda',
    os: report.os?.prettyName ?? report.os?.distro ?? null,
    notes,
    openstack: inspectProperties(report),
  };
}

/** Inspects the image file and returns its facts (and the report, for explanations). */
export async function imageFacts(
  path: string,
  signal?: AbortSignal,
): Promise<{ facts: ImageFacts; report: InspectReport }> {
  const image = await openImage(path);
  try {
    const report = await inspectImage(image, path, signal === undefined ? {} : { signal });
    return { facts: factsFromReport(report), report };
  } finally {
    await image.close();
  }
}
