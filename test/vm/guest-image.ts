// The guest image (kernel + initramfs), built on demand by
// scripts/build-guest-initramfs.sh, which rebuilds only when its inputs changed.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmHarnessError, VmPrerequisiteMissing } from './vm-errors.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const VM_BUILD_DIR = join(REPO_ROOT, 'build', 'vm');
const BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'build-guest-initramfs.sh');
/** The script's exit status for "a prerequisite is not installed". */
const EXIT_MISSING = 3;

export interface GuestImage {
  kernel: string;
  initrd: string;
}

/** Builds (or reuses) the guest image in `outDir` (default build/vm). */
export async function ensureGuestImage(outDir: string = VM_BUILD_DIR): Promise<GuestImage> {
  if (!existsSync('/boot') || !readdirSync('/boot').some((f) => f.startsWith('vmlinuz-'))) {
    throw new VmPrerequisiteMissing('no /boot/vmlinuz-* (install linux-image-amd64)');
  }
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile('bash', [BUILD_SCRIPT, '--out', outDir], { maxBuffer: 1 << 20 }, (err, out, errOut) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      done({ code: status, stdout: out, stderr: errOut });
    });
  });
  if (code === EXIT_MISSING) throw new VmPrerequisiteMissing(stderr.trim());
  if (code !== 0) {
    throw new VmHarnessError('VM_GUEST_BUILD_FAILED', `${BUILD_SCRIPT} exited ${code}: ${stderr.trim()}`);
  }
  const [kernel, initrd] = stdout.trim().split('\n').slice(-2);
  if (!kernel || !initrd || !existsSync(kernel) || !existsSync(initrd)) {
    throw new VmHarnessError('VM_GUEST_BUILD_FAILED', `${BUILD_SCRIPT} printed no kernel/initrd paths: ${stdout}`);
  }
  return { kernel, initrd };
}
