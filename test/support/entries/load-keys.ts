// A process that loads (and on an empty folder generates) Brána's keys, then prints fingerprints of
// what it ended up with: several of these started at once stand for nodes starting together.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { loadBrokerKeys } from '../../../src/keys/key-store.ts';

const digest = (value: string | Buffer) => createHash('sha256').update(value).digest('hex');
const keys = await loadBrokerKeys(process.argv[2]!, new URL('https://brana.example.cz'));
process.stdout.write(
  JSON.stringify({
    samlSigning: digest(keys.samlSigning.privateKeyPem + keys.samlSigning.certificatePem),
    samlEncryption: digest(keys.samlEncryption.privateKeyPem + keys.samlEncryption.certificatePem),
    signingKeys: digest(fs.readFileSync(keys.signingKeysFile)),
    cookieKeys: digest(JSON.stringify(keys.cookieKeys)),
    pseudonymSecret: digest(keys.pseudonymSecret),
  }),
);
