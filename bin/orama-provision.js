#!/usr/bin/env node
// The CLI is TypeScript run through tsx's loader: no build step between a checkout and a run.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/orama-provision.ts');
process.exitCode = await main(process.argv.slice(2));
