/**
 * Counts the attacks the security suites (test/security/) and the adapter-level tables (test/upstream/) run, by family, for the table at the end of
 * docs/SECURITY.md: `node scripts/count-attacks.ts`. A count is the number of mocha tests (`it`)
 * each file defines, table-driven ones included, as mocha's dry run lists them (nothing is
 * run). A fuzzing test counts once, however many inputs it generates; a control test (the genuine
 * message an attack starts from) counts too.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const FAMILIES: Record<string, string> = {
  'saml-signature-attacks.test.ts': 'SAML signature wrapping and signature checks',
  'saml-encryption-attacks.test.ts': 'SAML encryption',
  'saml-message-attacks.test.ts': 'SAML message checks (parsing, binding, status, LoA, size)',
  'saml-controls.test.ts': 'SAML controls (the genuine messages the attacks start from)',
  'saml-sep-attacks.test.ts': 'SAML from the SeP side (AuthnRequests to Brána as IdP)',
  'replay-races.test.ts': 'replay and races',
  'oidc-authorization.test.ts': 'OIDC authorization endpoint',
  'oidc-token-endpoint.test.ts': 'OIDC token endpoint',
  'oidc-logout.test.ts': 'logout',
  'upstream-oidc-attacks.test.ts': 'upstream OIDC identity means',
  'fuzz-acs.test.ts': 'fuzzing (ACS)',
  'fuzz-authorization.test.ts': 'fuzzing (authorization)',
  'hardening.test.ts': 'hardening (rate limits, bodies, cookies, CSP, operator log)',
  'cookie-prefixes.test.ts': 'hardening (cookie prefixes)',
  'leaks-and-amplification.test.ts': 'leaks and amplification',
  'broker-privacy.test.ts': 'privacy (what the broker links and releases)',
  'registration-approval.test.ts': 'SeP registration and approval',
  'dependency-floor.test.ts': 'dependency floor',
  'saml-adapter.test.ts': 'SAML answers at the adapter, one reason each (valid, signatures, wrapping, content, encryption)',
  'oidc-adapter.test.ts': 'upstream OIDC answers at the adapter, one reason each',
};

/** The suites that attack Brána: the HTTP-level security suites, and the adapter-level tables. */
const FOLDERS = ['test/security', 'test/upstream'];

const root = path.resolve(import.meta.dirname, '..');
const files = FOLDERS.flatMap((folder) =>
  fs
    .readdirSync(path.join(root, folder))
    .filter((name) => name.endsWith('.test.ts'))
    .sort()
    .map((name) => `${folder}/${name}`),
);
const out = execFileSync(path.join(root, 'node_modules/.bin/mocha'), ['--no-config', '--extension', 'ts', '--dry-run', '--reporter', 'json', ...files], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, LOG_LEVEL: 'error' },
  maxBuffer: 64 * 1024 * 1024,
});
const report = JSON.parse(out.slice(out.indexOf('{'))) as { tests: Array<{ file: string }> };
const counts = new Map<string, number>();
for (const test of report.tests) counts.set(path.relative(root, test.file), (counts.get(path.relative(root, test.file)) ?? 0) + 1);

console.log('| family | file | tests |');
console.log('|---|---|---:|');
for (const file of files) console.log(`| ${FAMILIES[path.basename(file)] ?? '(no family named yet)'} | \`${file}\` | ${counts.get(file) ?? 0} |`);
console.log(`| **all** | | **${report.tests.length}** |`);
