import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import semver from 'semver';

/**
 * The dependency floor: versions below these have known signature-bypass or parser flaws that
 * Brána's SAML checks rely on being fixed. Every copy anywhere in the tree counts (a nested old
 * copy is as exploitable as a top-level one). `--audit` also runs `npm audit` for high/critical.
 *
 *   node scripts/check-dependencies.ts            the floor (run by `npm test`)
 *   node scripts/check-dependencies.ts --audit    the floor and npm audit (run by .ci/run)
 */
export const FLOORS: Record<string, string> = {
  '@node-saml/node-saml': '5.1.0',
  'xml-crypto': '6.1.2',
  '@xmldom/xmldom': '0.8.4',
};

/** Abandoned packages with unfixed parser flaws, replaced by the scoped ones above. */
export const FORBIDDEN: Record<string, string> = {
  xmldom: 'abandoned; use @xmldom/xmldom',
  'node-saml': 'renamed; use @node-saml/node-saml',
};

export interface DependencyTree {
  version?: string;
  dependencies?: Record<string, DependencyTree>;
}

export interface Violation {
  path: string;
  version: string;
  problem: string;
}

/** Every copy of every package in the tree below its floor, or forbidden, with the path to it. */
export function findViolations(tree: DependencyTree, floors = FLOORS, forbidden = FORBIDDEN): Violation[] {
  const violations: Violation[] = [];
  const walk = (node: DependencyTree, trail: string[]) => {
    for (const [name, child] of Object.entries(node.dependencies ?? {})) {
      const path = [...trail, name].join(' > ');
      const version = child.version ?? '';
      if (forbidden[name]) violations.push({ path, version, problem: forbidden[name] });
      const floor = floors[name];
      if (floor) {
        const valid = semver.valid(version);
        if (!valid) violations.push({ path, version, problem: `version "${version}" cannot be checked against the floor ${floor}` });
        else if (semver.lt(valid, floor)) violations.push({ path, version, problem: `below the floor ${floor}` });
      }
      walk(child, [...trail, name]);
    }
  };
  walk(tree, []);
  return violations;
}

export class AuditUnavailable extends Error {}

export interface AuditFinding {
  name: string;
  severity: string;
  via: string;
}

/**
 * The high and critical findings in `npm audit --json` output. An answer without the audit
 * report (the endpoint unreachable or refusing) is an AuditUnavailable: never a silent pass.
 */
export function auditFindings(output: string): AuditFinding[] {
  let report: { error?: { summary?: string; detail?: string }; message?: string; metadata?: { vulnerabilities?: Record<string, number> }; vulnerabilities?: Record<string, { severity: string; via: unknown[] }> };
  try {
    report = JSON.parse(output) as typeof report;
  } catch {
    throw new AuditUnavailable(`npm audit did not answer with a report: ${output.trim().slice(0, 300) || '(nothing)'}`);
  }
  if (report.error || !report.metadata?.vulnerabilities || !report.vulnerabilities) {
    throw new AuditUnavailable(`the registry's audit endpoint did not give a report: ${report.message ?? report.error?.summary ?? 'no vulnerability metadata'}`);
  }
  return Object.entries(report.vulnerabilities)
    .filter(([, v]) => v.severity === 'high' || v.severity === 'critical')
    .map(([name, v]) => ({ name, severity: v.severity, via: v.via.map((item) => (typeof item === 'string' ? item : ((item as { title?: string }).title ?? ''))).join('; ') }));
}

function npm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('npm', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

function main(argv: string[]): number {
  // npm ls exits non-zero for extraneous or missing packages but still prints the tree.
  const listed = npm(['ls', '--all', '--json']);
  let tree: DependencyTree;
  try {
    tree = JSON.parse(listed.stdout) as DependencyTree;
  } catch {
    process.stderr.write(`dependency floor: npm ls gave no tree (exit ${listed.status}): ${listed.stderr.slice(0, 500)}\n`);
    return 1;
  }
  const violations = findViolations(tree);
  if (violations.length) {
    process.stderr.write(`dependency floor: ${violations.length} problem(s):\n${violations.map((v) => `  ${v.path}@${v.version}: ${v.problem}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write(`dependency floor: ${Object.entries(FLOORS).map(([name, floor]) => `${name} >= ${floor}`).join(', ')}: every copy in the tree is at or above it\n`);

  if (!argv.includes('--audit')) return 0;
  const audited = npm(['audit', '--audit-level=high', '--json']);
  try {
    const findings = auditFindings(audited.stdout);
    if (findings.length) {
      process.stderr.write(`npm audit: ${findings.length} high or critical finding(s):\n${findings.map((f) => `  ${f.name} (${f.severity}): ${f.via}`).join('\n')}\n`);
      return 1;
    }
    process.stdout.write('npm audit: no high or critical findings\n');
    return 0;
  } catch (err) {
    if (!(err instanceof AuditUnavailable)) throw err;
    process.stderr.write(`npm audit: NOT RUN — ${err.message}\nThe audit is part of the security checks; this is a failure, not a pass.\n`);
    return 3;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exit(main(process.argv.slice(2)));
