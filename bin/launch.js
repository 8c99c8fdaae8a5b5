// Starts a TypeScript entry point of vhostd. Plain JavaScript on purpose: it must run on any
// Node.js to either start the program (Node >= 24 strips types) or re-run it with the Node 24
// that `npm ci` installs into the checkout (a global `npm install -g .` links to the checkout,
// while the system's node may be older).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function launch(name, entry) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) {
    let mod;
    try {
      mod = await import(join(root, entry));
    } catch (e) {
      if (e && e.code === 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING') {
        console.error(`${name}: Node refuses to run TypeScript inside node_modules. Install from a checkout instead:\n` +
          '  git clone ... && cd vhostd && npm ci && npm install -g .');
        process.exit(1);
      }
      throw e;
    }
    // Entry points that export main() (vhostctl) run it; the daemon starts on import.
    if (typeof mod.main === 'function') process.exitCode = await mod.main(process.argv.slice(2));
    return;
  }
  const local = join(root, 'node_modules', '.bin', 'node');
  if (!existsSync(local)) {
    console.error(`${name}: needs Node.js >= 24 (this is ${process.version}); run 'npm ci' in ${root} to install it there.`);
    process.exit(1);
  }
  const child = spawn(local, [join(root, entry), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
