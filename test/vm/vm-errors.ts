// Errors of the VM test harness. `code` is stable; tests and the CI log key on it.

export type VmErrorCode =
  | 'VM_PREREQUISITE_MISSING' // qemu, kernel or a guest tool is not installed
  | 'VM_GUEST_BUILD_FAILED' // scripts/build-guest-initramfs.sh failed for another reason
  | 'VM_BAD_KERNEL_PARAM' // a vhostd.* value that would break the kernel command line
  | 'VM_QEMU_START_FAILED'; // spawn failed (not: the guest failed)

export class VmHarnessError extends Error {
  readonly code: VmErrorCode;
  constructor(code: VmErrorCode, message: string) {
    super(message);
    this.name = 'VmHarnessError';
    this.code = code;
  }
}

/** A missing tool or file: the test skips locally and fails in CI. */
export class VmPrerequisiteMissing extends VmHarnessError {
  constructor(message: string) {
    super('VM_PREREQUISITE_MISSING', message);
    this.name = 'VmPrerequisiteMissing';
  }
}
