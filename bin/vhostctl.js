#!/usr/bin/env node
// vhostctl launcher. vhostd ships TypeScript that Node 24 runs directly (type stripping); this
// shim only loads it and explains the two ways that can fail.
const entry = new URL('../src/cli/vhostctl.ts', import.meta.url);
let mod;
try {
  mod = await import(entry.href);
} catch (e) {
  const code = e && typeof e === 'object' ? e.code : undefined;
  if (code === 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING') {
    process.stderr.write(
      'vhostctl: Node.js does not run TypeScript from inside node_modules, where this copy of vhostd is installed.\n' +
        '  Install from a checkout instead (npm links it, so it runs from there):\n' +
        '    git clone <vhostd repository> && cd vhostd && npm install && npm install -g .\n' +
        '  or run it from a checkout directly:  node /path/to/vhostd/src/cli/vhostctl.ts --help\n',
    );
    process.exit(1);
  }
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
    process.stderr.write(`vhostctl: needs Node.js 24 or later (it runs TypeScript directly); this is Node.js ${process.version}\n`);
    process.exit(1);
  }
  throw e;
}
process.exitCode = await mod.main(process.argv.slice(2));
