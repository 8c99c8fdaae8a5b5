#!/usr/bin/env node
// Starts the TypeScript entry point (Node >= 24 strips types). See README for global installs.
import('../src/cli/vhostd.ts').catch((e) => {
  if (e && e.code === 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING') {
    console.error('vhostd: this Node refuses to run TypeScript from node_modules; run it from a checkout (npx vhostd) or see README "Global install".');
  } else {
    console.error(e);
  }
  process.exit(1);
});
