import { test } from 'node:test';
import assert from 'node:assert/strict';
import { versionInfo } from '../../../src/rpc/package-version.ts';

test('spdk_get_version fields from a version string', () => {
  assert.deepEqual(versionInfo('0.1.0'), { version: 'vhostd 0.1.0', fields: { major: 0, minor: 1, patch: 0, suffix: '' } });
  assert.deepEqual(versionInfo('23.5.12-rc1'), { version: 'vhostd 23.5.12-rc1', fields: { major: 23, minor: 5, patch: 12, suffix: '-rc1' } });
  assert.deepEqual(versionInfo('dev'), { version: 'vhostd dev', fields: { major: 0, minor: 0, patch: 0, suffix: 'dev' } });
});
