/** The OVF format URI of a streamOptimized VMDK (what AWS VM Import requires). */
export const STREAM_OPTIMIZED_URI =
  'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';
