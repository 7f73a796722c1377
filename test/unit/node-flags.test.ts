import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROKER_NODE_FLAGS } from '../../src/node-flags.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The flags a broker node runs with are one list (src/node-flags.ts): npm start and the image use all of it. */
describe('the Node flags of a broker node', () => {
  it('are all in npm start and in the Dockerfile, and this Node accepts each of them', () => {
    const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    assert.ok(cmd, 'the Dockerfile has a CMD in exec form');
    const image = JSON.parse(cmd) as string[];
    for (const flag of BROKER_NODE_FLAGS) {
      assert.ok(start.split(/\s+/).includes(flag), `npm start runs with ${flag}`);
      assert.ok(image.includes(flag), `the image runs with ${flag}`);
    }
    // A flag this Node does not know would stop every node at its start ("bad option").
    const run = spawnSync(process.execPath, [...BROKER_NODE_FLAGS, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
  });
});
