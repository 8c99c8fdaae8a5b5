// Registering a bdev a method just built: if the registry refuses it (the name was taken while it
// was being built), the bdev is destroyed, so nothing it holds (memfd, file, image) leaks.
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';

export function registerOrDestroy(bdevs: BdevRegistry, bdev: Bdev): string {
  try {
    bdevs.register(bdev);
  } catch (e) {
    bdev.destroy();
    throw e;
  }
  return bdev.name;
}
