import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/brana.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `brana …` in-process with these environment variables, capturing what it prints. */
export async function brana(args: string[], env: Record<string, string>): Promise<CliResult> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const out: string[] = [];
  const err: string[] = [];
  const stdout = process.stdout.write.bind(process.stdout);
  const stderr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    out.push(String(chunk));
    const callback = rest.find((item) => typeof item === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    return { code: await runCli(args), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
    process.env = saved;
  }
}

const ENTRY = fileURLToPath(new URL('../../src/cli/brana.ts', import.meta.url));

/** Runs `brana …` as an operator does: a child process of its own, its exit code and both streams. */
export function branaProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ENTRY, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
