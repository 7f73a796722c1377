import fs from 'node:fs';
import type { Command } from 'commander';
import { readEnvironment } from '../config/environment.ts';
import { readIdentityMeansFolder } from '../means/identity-means.ts';
import { checkMeans, problemLine, type CapturedResponse } from './means-doctor.ts';
import { OperatorError } from './operator-error.ts';

/** The means checked is not usable as configured: one line per problem, exit code 1. */
export class MeansNotUsable extends Error {}

/** `brana means check <id> [--response FILE] [--at TIME]`: the means doctor. */
export function addMeansCommands(program: Command): void {
  const means = program.command('means').description('identity means: check one before (and after) connecting it');

  means
    .command('check <id>')
    .description("fetch and check a means' metadata, show what Brána sends it and accepts from it; with --response, verify a captured answer offline")
    .option('--response <file>', 'a captured SAMLResponse (base64 as posted, or the XML itself) to verify against the current metadata and Brána\'s keys')
    .option('--at <time>', "verify the response at this ISO 8601 time instead of its own IssueInstant")
    .action(async (id: string, options: { response?: string; at?: string }) => {
      const env = readEnvironment();
      const all = readIdentityMeansFolder(env.providersDir);
      const chosen = all.find((item) => item.id === id);
      if (!chosen) throw new OperatorError(`no identity means ${id} in ${env.providersDir} (known: ${all.map((item) => item.id).join(', ')})`);
      if (options.at !== undefined && options.response === undefined) throw new OperatorError('--at: only with --response');
      const at = options.at === undefined ? undefined : Date.parse(options.at);
      if (at !== undefined && (Number.isNaN(at) || !/^\d{4}-\d{2}-\d{2}T/.test(options.at!))) throw new OperatorError(`--at: must be an ISO 8601 time such as 2025-01-31T12:00:00Z (got ${options.at})`);
      let captured: CapturedResponse | undefined;
      if (options.response !== undefined) {
        try {
          captured = { file: options.response, text: fs.readFileSync(options.response, 'utf8'), ...(at !== undefined ? { at } : {}) };
        } catch (err) {
          throw new OperatorError(`${options.response}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
      }
      const { report, problems } = await checkMeans(chosen, { publicUrl: env.publicUrl, keysDir: env.keysDir, now: Date.now() }, captured);
      const errors = problems.filter((problem) => problem.severity === 'error');
      process.stdout.write(`${JSON.stringify({ ...report, usable: errors.length === 0, problems: problems.map(problemLine) }, null, 2)}\n`);
      for (const warning of problems.filter((problem) => problem.severity === 'warning')) process.stderr.write(`${problemLine(warning)}\n`);
      if (errors.length) throw new MeansNotUsable(errors.map(problemLine).join('\n'));
    });
}
