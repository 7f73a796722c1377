import assert from 'node:assert/strict';
import { AuditUnavailable, auditFindings, findViolations, type DependencyTree } from '../../scripts/check-dependencies.ts';

/** The dependency floor check (scripts/check-dependencies.ts), run by `npm test` and `.ci/run`. */
describe('the dependency floor', () => {
  const tree = (deps: DependencyTree['dependencies']): DependencyTree => ({ version: '0.1.0', dependencies: deps });

  it('passes a tree where every copy is at or above its floor', () => {
    const ok = tree({
      '@node-saml/node-saml': { version: '5.1.0', dependencies: { 'xml-crypto': { version: '6.3.2' }, '@xmldom/xmldom': { version: '0.8.15' } } },
      'xml-crypto': { version: '6.1.2' },
      '@xmldom/xmldom': { version: '0.9.12' },
    });
    assert.deepEqual(findViolations(ok), []);
  });

  it('finds an old copy however deep it is nested, naming the path to it', () => {
    const nested = tree({
      '@node-saml/node-saml': { version: '5.1.0', dependencies: { 'xml-encryption': { version: '3.1.0', dependencies: { '@xmldom/xmldom': { version: '0.7.13' } } } } },
      'some-saml-helper': { version: '1.0.0', dependencies: { 'xml-crypto': { version: '6.0.0' }, xmldom: { version: '0.6.0' } } },
      'old-sp': { version: '2.0.0', dependencies: { '@node-saml/node-saml': { version: '4.0.5' } } },
    });
    assert.deepEqual(
      findViolations(nested).map((v) => `${v.path}@${v.version}`),
      ['@node-saml/node-saml > xml-encryption > @xmldom/xmldom@0.7.13', 'some-saml-helper > xml-crypto@6.0.0', 'some-saml-helper > xmldom@0.6.0', 'old-sp > @node-saml/node-saml@4.0.5'],
    );
  });

  it('treats a version it cannot read as a problem, not a pass', () => {
    assert.equal(findViolations(tree({ 'xml-crypto': { version: 'github:someone/xml-crypto' } })).length, 1);
    assert.equal(findViolations(tree({ 'xml-crypto': {} })).length, 1);
  });

  it('reads high and critical npm audit findings, and never passes an audit that did not run', () => {
    const report = {
      auditReportVersion: 2,
      vulnerabilities: {
        'xml-crypto': { severity: 'critical', via: [{ title: 'Signature bypass' }] },
        qs: { severity: 'moderate', via: [{ title: 'Prototype pollution' }] },
      },
      metadata: { vulnerabilities: { info: 0, low: 0, moderate: 1, high: 0, critical: 1, total: 2 } },
    };
    assert.deepEqual(auditFindings(JSON.stringify(report)), [{ name: 'xml-crypto', severity: 'critical', via: 'Signature bypass' }]);
    assert.deepEqual(auditFindings(JSON.stringify({ vulnerabilities: {}, metadata: { vulnerabilities: { total: 0 } } })), []);
    // What npm prints when the registry refuses the bulk advisory request (as on a mirror without it).
    const refused = { message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk', statusCode: 405, error: { summary: '', detail: '' } };
    assert.throws(() => auditFindings(JSON.stringify(refused)), (err: unknown) => err instanceof AuditUnavailable && /405 Method Not Allowed/.test((err as Error).message));
    assert.throws(() => auditFindings(''), AuditUnavailable);
  });
});
