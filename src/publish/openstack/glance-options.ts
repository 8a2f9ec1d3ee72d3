/**
 * How an OpenStack target wants its images in Glance, from ferry.yaml:
 * the disk format a disk layout goes up as, the upload method, the stores
 * to copy to, and who may see the image.
 */

export type GlanceDiskFormat = 'qcow2' | 'raw' | 'vmdk' | 'vhd' | 'vhdx';
export const GLANCE_DISK_FORMATS: readonly GlanceDiskFormat[] = [
  'qcow2',
  'raw',
  'vmdk',
  'vhd',
  'vhdx',
];

/**
 * put: create + PUT /file; glance-direct: stage + import; web-download:
 * Glance fetches the image from a server ferry runs for the upload; auto:
 * PUT /file, or glance-direct when stores are named or PUT is refused.
 */
export type GlanceUploadMethod = 'auto' | 'put' | 'glance-direct' | 'web-download';

export type GlanceVisibility = 'private' | 'shared' | 'community' | 'public';

export interface GlanceOptions {
  /** What a disk layout goes up as (default qcow2); the fs layout always goes up as aki/ari/ami. */
  readonly diskFormat: GlanceDiskFormat;
  /** qcow2 only: compressed clusters (smaller upload, slower to write). */
  readonly compress: boolean;
  readonly method: GlanceUploadMethod;
  /** web-download: where ferry serves the image, and the URL Glance reaches it by (default: that address). */
  readonly webDownload?: {
    readonly listen: { readonly host: string; readonly port: number };
    readonly baseUrl?: string;
  };
  /** Stores the image is copied to after the upload (copy-image), when the server has several. */
  readonly stores: readonly string[];
  /** Default private. */
  readonly visibility: GlanceVisibility;
  /** Projects the image is shared with (visibility shared). */
  readonly members: readonly string[];
  readonly tags: readonly string[];
  /** Extra image properties, set as given (ferry's own and inspect's win on a clash). */
  readonly properties: Readonly<Record<string, string>>;
}
