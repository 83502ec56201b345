// On an AMD APU (Strix Halo) the GPU reaches system RAM through the GTT window, which the amdgpu
// driver sizes at boot: by default about half of RAM, so a 40 GB model "does not fit" on a 128 GB
// machine. Owners raise it on the kernel command line. The values depend on the RAM installed,
// so they are computed here rather than quoted.

const GiB = 1024 ** 3;

export interface GttAdvice {
  /** RAM the machine has installed, as inferred (GiB). */
  installedGiB: number;
  /** GTT size to set, GiB. */
  gttGiB: number;
  /** amdgpu.gttsize, in MiB. */
  gttSizeMiB: number;
  /** ttm.pages_limit, in 4 KiB pages (newer kernels take only this one). */
  pagesLimit: number;
  /** "amdgpu.gttsize=126976 ttm.pages_limit=32505856" */
  kernelArgs: string;
  /** How much the GPU could then hold, bytes (the GTT plus the BIOS carve-out it should have). */
  gpuBytesAfter: number;
  /** The BIOS carve-out now, bytes. */
  carveoutBytes: number;
  /** The carve-out is large: set it to its minimum, since RAM the BIOS takes the OS never sees. */
  lowerCarveout: boolean;
}

/** Strix Halo's smallest BIOS UMA frame buffer. */
export const MIN_CARVEOUT_BYTES = 512 * 1024 ** 2;
/** Above this the carve-out is a choice the user made (the BIOS offers 512 MB to 96 GB). */
const SMALL_CARVEOUT_BYTES = GiB;

/**
 * Linux reports MemTotal without the BIOS carve-out and firmware reservations; adding the
 * carve-out back and rounding up to 16 GiB recovers the installed size (Strix Halo ships 32, 64,
 * 96 or 128 GB). Leaves 4 GiB to the OS on 64 GiB and up (a quarter below that), which is what
 * owners of 128 GB machines use: 124 GiB.
 */
export function gttAdvice(memTotalBytes: number, vramCarveoutBytes = 0): GttAdvice {
  const installedGiB = Math.ceil((memTotalBytes + vramCarveoutBytes) / GiB / 16) * 16;
  const reserveGiB = installedGiB >= 64 ? 4 : Math.ceil(installedGiB / 4);
  const gttGiB = installedGiB - reserveGiB;
  const gttSizeMiB = gttGiB * 1024;
  const pagesLimit = gttSizeMiB * 256;
  // GTT pages are RAM the OS sees, so a GTT of installed-minus-4 GiB needs the carve-out at its
  // minimum; with a 96 GiB carve-out the OS sees ~31 GiB and no GTT setting can give more.
  const lowerCarveout = vramCarveoutBytes > SMALL_CARVEOUT_BYTES;
  return {
    installedGiB,
    gttGiB,
    gttSizeMiB,
    pagesLimit,
    kernelArgs: `amdgpu.gttsize=${gttSizeMiB} ttm.pages_limit=${pagesLimit}`,
    gpuBytesAfter: gttGiB * GiB + (lowerCarveout ? MIN_CARVEOUT_BYTES : vramCarveoutBytes),
    carveoutBytes: vramCarveoutBytes,
    lowerCarveout,
  };
}

/** One sentence with the exact setting, for a verdict's fix. */
export function gttFixText(a: GttAdvice): string {
  const kernel = `add "${a.kernelArgs}" to the kernel command line (GRUB_CMDLINE_LINUX, then update-grub and reboot)`;
  if (a.lowerCarveout) {
    return `set the BIOS UMA frame buffer (now ${Math.round(a.carveoutBytes / GiB)} GiB, which the OS never gets back) to its minimum (512 MB) and ${kernel} so the GPU can use ${a.gttGiB} GiB of your ${a.installedGiB} GB as GTT, which the CPU side shares`;
  }
  return `${kernel} so the GPU can use ${a.gttGiB} GiB of your ${a.installedGiB} GB, and keep the BIOS UMA frame buffer at its minimum`;
}
