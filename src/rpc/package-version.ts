// vhostd's version, from package.json (spdk_get_version reports it).
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const PACKAGE_VERSION = readVersion();

/** spdk_get_version's result: { version, fields: { major, minor, patch, suffix } }. */
export function versionInfo(version = PACKAGE_VERSION): { version: string; fields: { major: number; minor: number; patch: number; suffix: string } } {
  const m = /^(\d+)\.(\d+)\.(\d+)(.*)$/.exec(version);
  const fields = m
    ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), suffix: m[4] }
    : { major: 0, minor: 0, patch: 0, suffix: version };
  return { version: `vhostd ${version}`, fields };
}
