#!/usr/bin/env node
// The `brana` command (npx brana …). Brána is TypeScript run by Node's own type stripping (Node 22.18+).
import { runCli } from '../src/cli/brana.ts';

process.exitCode = await runCli(process.argv.slice(2));
