/**
 * Where a login's heap allocation comes from, read from a profile written by
 * `node bench/alloc-per-login.ts 60 /tmp/alloc.json`:
 *   node bench/alloc-sites.ts /tmp/alloc.json [rows]
 * Only the broker's allocation is counted (stacks through the test driver or the development IdP are
 * left out, as alloc-per-login does). Tables, in bytes per login: by function and by package, self
 * (allocated in the frame itself) and inclusive (in it or anything it called, counted once per
 * stack); by the nearest Brána frame on the stack (which of our calls caused the bytes, wherever they
 * were allocated); and for the largest self sites, the stacks that reach them.
 */
import fs from 'node:fs';
import { HARNESS, packageOf, type CallFrame, type SamplingNode } from './heap-profile.ts';


const [file, rowsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/alloc-sites.ts <profile.json from alloc-per-login.ts> [rows]');
const { logins, head } = JSON.parse(fs.readFileSync(file, 'utf8')) as { logins: number; head: SamplingNode };
const rows = Number(rowsArg ?? 25);


const functionOf = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`;
const isBrana = (frame: CallFrame) => frame.url.includes('/src/') && !frame.url.includes('node_modules');

const selfByFunction = new Map<string, number>();
const inclusiveByFunction = new Map<string, number>();
const selfByPackage = new Map<string, number>();
const inclusiveByPackage = new Map<string, number>();
const byBranaFrame = new Map<string, number>();
const stacksBySite = new Map<string, Map<string, number>>();
let total = 0;

const add = (map: Map<string, number>, key: string, bytes: number) => map.set(key, (map.get(key) ?? 0) + bytes);

function walk(node: SamplingNode, stack: CallFrame[]): void {
  if (HARNESS.test(node.callFrame.url)) return;
  const here = [...stack, node.callFrame];
  if (node.selfSize) {
    const bytes = node.selfSize;
    total += bytes;
    const site = functionOf(node.callFrame);
    add(selfByFunction, site, bytes);
    add(selfByPackage, packageOf(node.callFrame.url), bytes);
    for (const fn of new Set(here.map(functionOf))) add(inclusiveByFunction, fn, bytes);
    for (const pkg of new Set(here.slice(1).map((frame) => packageOf(frame.url)))) add(inclusiveByPackage, pkg, bytes);
    const brana = here.findLast(isBrana);
    add(byBranaFrame, brana ? functionOf(brana) : '(no Brána frame)', bytes);
    const path = here
      .slice(-8)
      .map((frame) => functionOf(frame))
      .join(' < ');
    add(stacksBySite.get(site) ?? stacksBySite.set(site, new Map()).get(site)!, path, bytes);
  }
  for (const child of node.children) walk(child, here);
}
walk(head, []);

const kb = (bytes: number) => `${(bytes / logins / 1024).toFixed(1).padStart(7)} KiB`;
const top = (map: Map<string, number>, n = rows) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
const table = (title: string, map: Map<string, number>, n = rows) => {
  process.stdout.write(`\n${title}\n`);
  for (const [key, bytes] of top(map, n)) process.stdout.write(`  ${kb(bytes)}  ${key}\n`);
};

process.stdout.write(`${logins} logins; broker: ${kb(total)} per login\n`);
table('by package, self:', selfByPackage, 15);
table('by package, inclusive:', inclusiveByPackage, 15);
table('by function, self:', selfByFunction);
table('by function, inclusive:', inclusiveByFunction);
table('by the nearest Brána frame on the stack:', byBranaFrame);
process.stdout.write('\nlargest self sites, their heaviest stacks (innermost last):\n');
for (const [site, bytes] of top(selfByFunction, 12)) {
  process.stdout.write(`  ${kb(bytes)}  ${site}\n`);
  for (const [path, pathBytes] of top(stacksBySite.get(site)!, 3)) process.stdout.write(`      ${kb(pathBytes)}  ${path.split(' < ').reverse().join(' < ')}\n`);
}
