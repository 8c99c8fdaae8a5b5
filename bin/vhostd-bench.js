#!/usr/bin/env node
import { launch } from './launch.js';

await launch('vhostd-bench', 'src/cli/vhostd-bench.ts');
