import { createPrivateKey } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import type { Element } from '@xmldom/xmldom';
import { ConfigurationError } from '../config/configuration-error.ts';
import { ALL_LOA_URIS, loaAtLeast, type Loa } from '../domain/loa.ts';
import { generateSelfSignedCertificate } from '../keys/certificate.ts';
import { readSamlKeys, type SamlKeys } from '../keys/key-store.ts';
import type { IdentityMeans, OidcMeans, SamlMeans } from '../means/identity-means.ts';
import { UpstreamRejected, type BrowserHandoff } from '../upstream/contract.ts';
import { MetadataSource, MetadataUnavailable } from '../upstream/metadata/metadata-source.ts';
import { discoveryUrl, parseDiscovery } from '../upstream/oidc/discovery.ts';
import type { IdpMetadata } from '../upstream/saml/idp-metadata.ts';
import { diagnoseSamlMetadata } from '../upstream/saml/metadata-diagnosis.ts';
import {
  ALLOWED_CANONICALIZATION,
  ALLOWED_DATA_ENCRYPTION,
  ALLOWED_DIGESTS,
  ALLOWED_KEY_TRANSPORT,
  ALLOWED_OAEP_DIGESTS,
  ALLOWED_SIGNATURE_METHODS,
  ALLOWED_TRANSFORMS,
} from '../upstream/saml/response-guard.ts';
import { AEAD_DATA_ENCRYPTION, MAX_ASSERTION_AGE_MS, SamlAdapter } from '../upstream/saml/saml-adapter.ts';
import { CLOCK_SKEW_MS } from '../upstream/contract.ts';
import { NS, attributeOf, childElements, descendants, parseStrictXml, singleChild, textOf } from '../upstream/saml/xml.ts';

/** One line for the operator: `<file>: <field>: <problem>`; errors make the means unusable. */
export interface DoctorProblem {
  severity: 'error' | 'warning';
  source: string;
  field: string;
  problem: string;
}

export interface DoctorReport {
  report: Record<string, unknown>;
  problems: DoctorProblem[];
}

export function problemLine(problem: DoctorProblem): string {
  return `${problem.severity === 'warning' ? 'warning: ' : ''}${problem.source}: ${problem.field}: ${problem.problem}`;
}

export interface DoctorContext {
  publicUrl: URL;
  keysDir: string;
  /** The time metadata and certificates are judged at (ms). */
  now: number;
}

/** A captured SAMLResponse to verify offline, and the clock to verify it at (else its IssueInstant). */
export interface CapturedResponse {
  file: string;
  text: string;
  at?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Reads a means' metadata (a file or https URL) once, as a refresh would. */
async function fetchDocument(location: string, accept?: string, timeoutMs?: number): Promise<string> {
  return location.startsWith('https://') || location.startsWith('http://') ? MetadataSource.url(location, timeoutMs, accept)() : MetadataSource.file(location)();
}

/**
 * Brána's SAML keys from the keys folder, never created here: a folder without them (before the first
 * start) gets a throwaway pair, so that the request can still be shown, and a warning.
 */
function samlKeys(context: DoctorContext, problems: DoctorProblem[]): SamlKeys {
  const keys = readSamlKeys(context.keysDir);
  if (keys) return keys;
  problems.push({
    severity: 'warning',
    source: 'environment',
    field: 'BRANA_KEYS_DIR',
    problem: `${context.keysDir} holds no SAML keys yet (Brána makes them on its first start): the request below is signed, and any answer decrypted, with a throwaway key`,
  });
  const signing = generateSelfSignedCertificate('brana means check (throwaway)', 1);
  const encryption = generateSelfSignedCertificate('brana means check (throwaway)', 1);
  return { samlSigning: signing, samlEncryption: { ...encryption, privateKey: createPrivateKey(encryption.privateKeyPem) } };
}

/** The metadata held still and judged now, as a node would judge it (a captured answer may be older). */
function heldMetadata(means: SamlMeans, metadata: IdpMetadata | null, now: number): { current(): IdpMetadata } {
  return {
    current() {
      if (!metadata) throw new MetadataUnavailable(means.id, `no usable metadata for ${means.id} at ${means.saml.metadata}`);
      if (metadata.validUntil && metadata.validUntil.getTime() <= now) throw new MetadataUnavailable(means.id, `the metadata of ${means.id} expired at ${metadata.validUntil.toISOString()}`);
      return metadata;
    },
  };
}

/** What the AuthnRequest Brána sends says, decoded from the browser hand-off. */
export function describeAuthnRequest(handoff: BrowserHandoff): Record<string, unknown> {
  let xml: string;
  let requestSignature: string;
  const url = new URL(handoff.url);
  if (handoff.kind === 'redirect') {
    xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
    const sigAlg = url.searchParams.get('SigAlg');
    requestSignature = sigAlg ? `in the query string (HTTP-Redirect binding), ${sigAlg}` : 'none';
  } else {
    xml = Buffer.from(handoff.fields.SAMLRequest ?? '', 'base64').toString('utf8');
    requestSignature = '';
  }
  const request = parseStrictXml(xml).documentElement as Element;
  if (handoff.kind === 'post') {
    const method = descendants(request, NS.dsig, 'SignatureMethod')[0];
    requestSignature = method ? `enveloped in the request (HTTP-POST binding), ${method.getAttribute('Algorithm')}` : 'none';
  }
  const policy = singleChild(request, NS.protocol, 'NameIDPolicy');
  const context = singleChild(request, NS.protocol, 'RequestedAuthnContext');
  const extensions = singleChild(request, NS.protocol, 'Extensions');
  const issuer = singleChild(request, NS.assertion, 'Issuer');
  return {
    binding: handoff.kind === 'redirect' ? 'HTTP-Redirect' : 'HTTP-POST',
    to: `${url.origin}${url.pathname}`,
    issuer: issuer ? textOf(issuer).trim() : null,
    destination: attributeOf(request, 'Destination') ?? null,
    assertionConsumerServiceURL: attributeOf(request, 'AssertionConsumerServiceURL') ?? null,
    protocolBinding: attributeOf(request, 'ProtocolBinding') ?? null,
    signature: requestSignature,
    forceAuthn: attributeOf(request, 'ForceAuthn') === 'true',
    isPassive: attributeOf(request, 'IsPassive') === 'true',
    nameIdPolicy: policy ? { format: attributeOf(policy, 'Format') ?? null, allowCreate: attributeOf(policy, 'AllowCreate') ?? null } : null,
    requestedAuthnContext: context
      ? { comparison: attributeOf(context, 'Comparison') ?? 'exact', classRefs: childElements(context, NS.assertion, 'AuthnContextClassRef').map((ref) => textOf(ref).trim()) }
      : null,
    eidasExtensions: extensions
      ? {
          spType: descendants(extensions, NS.eidas, 'SPType').map((element) => textOf(element).trim())[0] ?? null,
          requestedAttributes: descendants(extensions, NS.eidas, 'RequestedAttribute').map((element) => element.getAttribute('Name')),
        }
      : null,
  };
}

function signatureRule(means: SamlMeans): string {
  const { requireSignedResponse: response, requireSignedAssertion: assertion } = means.saml;
  if (response && assertion) return 'the Response and the Assertion must each carry a valid signature by a certificate in the metadata';
  if (response) return 'the Response must carry a valid signature by a certificate in the metadata (it covers the Assertion); an Assertion signature, if present, must verify too';
  if (assertion) return 'the Assertion must carry its own valid signature by a certificate in the metadata; a Response signature, if present, must verify too';
  return "a valid signature by a certificate in the metadata must cover the Assertion: its own or the Response's; every signature present must verify";
}

/** What Brána accepts from this means: its signature policy, LoA map, clock and algorithms. */
function acceptance(means: SamlMeans, adapter: SamlAdapter): Record<string, unknown> {
  const listed = (set: ReadonlySet<string>) => [...set];
  return {
    signatures: { requireSignedResponse: means.saml.requireSignedResponse, requireSignedAssertion: means.saml.requireSignedAssertion, rule: signatureRule(means) },
    encryptedAssertion: `optional; decrypted with Brána's saml-encryption key; AES-GCM (${listed(AEAD_DATA_ENCRYPTION).join(', ')}) in any Response, AES-CBC only inside a signed Response`,
    audience: adapter.entityId,
    recipient: adapter.acsUrl,
    subjectConfirmation: 'bearer, InResponseTo = the request, Recipient = the ACS, NotOnOrAfter, no NotBefore',
    levelsOfAssurance: {
      registeredMaximum: means.loa,
      understood: ALL_LOA_URIS,
      authnContextMap: means.saml.authnContextMap,
      otherwise: 'refused (loa_unmapped); a higher level than the registered maximum is capped to it',
    },
    clockSkewSeconds: CLOCK_SKEW_MS / 1000,
    maximumAssertionAgeSeconds: MAX_ASSERTION_AGE_MS / 1000,
    algorithms: {
      signature: listed(ALLOWED_SIGNATURE_METHODS),
      digest: listed(ALLOWED_DIGESTS),
      canonicalization: listed(ALLOWED_CANONICALIZATION),
      transforms: listed(ALLOWED_TRANSFORMS),
      dataEncryption: listed(ALLOWED_DATA_ENCRYPTION),
      keyTransport: listed(ALLOWED_KEY_TRANSPORT),
      oaepDigest: listed(ALLOWED_OAEP_DIGESTS),
    },
  };
}

/** The means file's own settings that cannot work as written. */
function settingsProblems(means: SamlMeans): DoctorProblem[] {
  return Object.entries(means.saml.authnContextMap)
    .filter(([, loa]) => !loaAtLeast(means.loa, loa))
    .map(([uri, loa]) => ({ severity: 'warning' as const, source: means.source, field: `saml.authnContextMap.${uri}`, problem: `maps to ${loa}, above the means' registered loa ${means.loa}: such an assertion counts as ${means.loa}` }));
}

/** Reads a captured SAMLResponse as posted (base64, or a form body) or as XML into the ACS form. */
export function responseForm(text: string): Record<string, string> {
  const trimmed = text.trim();
  if (trimmed.startsWith('<')) return { SAMLResponse: Buffer.from(trimmed, 'utf8').toString('base64') };
  let value = trimmed.startsWith('SAMLResponse=') ? trimmed.slice('SAMLResponse='.length).split('&')[0]! : trimmed;
  if (/%[0-9A-Fa-f]{2}/.test(value)) value = decodeURIComponent(value);
  return { SAMLResponse: value };
}

/**
 * Verifies a captured answer offline with the real adapter: `correlate`, then `handleAnswer` against a
 * request built from the answer's own InResponseTo, at the chosen clock.
 */
async function verifyResponse(means: SamlMeans, captured: CapturedResponse, build: (clock: () => number) => SamlAdapter): Promise<{ report: Record<string, unknown>; problem: DoctorProblem | null }> {
  let at = captured.at ?? Date.now();
  let clock = captured.at !== undefined ? `--at ${iso(captured.at)}` : 'now (the response names no IssueInstant)';
  const adapter = build(() => at);
  const report: Record<string, unknown> = { file: captured.file, requestBinding: "not checked offline: the expected request is built from the response's own InResponseTo" };
  try {
    const answer = adapter.correlate(responseForm(captured.text));
    const issueInstant = Date.parse(answer.response.document.documentElement?.getAttribute('IssueInstant') ?? '');
    if (captured.at === undefined && !Number.isNaN(issueInstant)) {
      at = issueInstant;
      clock = `the response's IssueInstant ${iso(at)}`;
    }
    report.clock = clock;
    report.inResponseTo = answer.requestId;
    const identity = await adapter.handleAnswer(answer, { requestId: answer.requestId, means: means.id, minimumLoa: 'low', forceAuthn: false, createdAt: at });
    report.identity = {
      means: identity.means,
      authority: identity.authority,
      acr: identity.acr,
      subject: identity.subject,
      instant: identity.instant.toISOString(),
      assertionId: identity.assertionId,
      assertionExpiresAt: identity.assertionExpiresAt.toISOString(),
      attributes: Object.keys(identity.attributes),
    };
    report.notCheckedHere = "the SeP's minimum LoA and a forced login's freshness: the server checks them against the real request";
    return { report, problem: null };
  } catch (err) {
    if (!(err instanceof UpstreamRejected)) throw err;
    report.clock ??= clock;
    report.refused = { reason: err.reason, outward: err.outward, ...(err.detail ? { detail: err.detail } : {}) };
    return { report, problem: { severity: 'error', source: captured.file, field: err.reason, problem: err.detail ?? `refused (the citizen is told: ${err.outward})` } };
  }
}

async function checkSaml(means: SamlMeans, context: DoctorContext, captured: CapturedResponse | undefined): Promise<DoctorReport> {
  const problems: DoctorProblem[] = settingsProblems(means);
  const location = means.saml.metadata;
  const report: Record<string, unknown> = { means: means.id, protocol: 'saml', file: means.source, loa: means.loa };
  if (!location) {
    problems.push({ severity: 'error', source: means.source, field: 'saml.metadata', problem: 'is null: only the embedded development IdP serves this means (development mode); name the IdP\'s metadata file or https URL' });
    return { report, problems };
  }
  let text: string;
  try {
    text = await fetchDocument(location);
  } catch (err) {
    problems.push({ severity: 'error', source: means.source, field: 'saml.metadata', problem: `cannot be read from ${location} (${(err as Error).message})` });
    return { report, problems };
  }
  const diagnosis = diagnoseSamlMetadata(text, { source: location, ...(means.saml.entityId ? { entityId: means.saml.entityId } : {}), trustAnchors: means.saml.metadataTrustAnchors, now: context.now });
  report.metadata = { location, ...diagnosis.facts };
  problems.push(...diagnosis.problems.map((problem) => ({ ...problem, source: location })));

  const keys = samlKeys(context, problems);
  const build = (clock: () => number) => new SamlAdapter({ means, metadata: heldMetadata(means, diagnosis.metadata, context.now), keys, publicUrl: context.publicUrl, now: clock });
  const adapter = build(() => context.now);
  report.serviceProvider = { entityId: adapter.entityId, metadataUrl: adapter.entityId, acsUrl: adapter.acsUrl };

  if (captured) {
    const verified = await verifyResponse(means, captured, build);
    report.response = verified.report;
    if (verified.problem) problems.push(verified.problem);
    return { report, problems };
  }

  const readable = diagnosis.metadata;
  if (readable) {
    // Shown even from expired metadata (already an error above): what the IdP would be sent.
    const sender = new SamlAdapter({ means, metadata: { current: () => readable }, keys, publicUrl: context.publicUrl });
    report.sends = {
      example: `a login for a SeP that asks for ${means.loa}; ForceAuthn="true" only when the SeP asks for prompt=login or max_age`,
      ...describeAuthnRequest(await sender.startLogin({ minimumLoa: means.loa, forceAuthn: false, spType: 'public' })),
    };
  }
  report.accepts = acceptance(means, adapter);
  return { report, problems };
}

async function checkOidc(means: OidcMeans, context: DoctorContext): Promise<DoctorReport> {
  const problems: DoctorProblem[] = [];
  const issuer = means.oidc.issuer;
  const report: Record<string, unknown> = { means: means.id, protocol: 'oidc', file: means.source, loa: means.loa };
  if (!issuer) {
    problems.push({ severity: 'error', source: means.source, field: 'oidc.issuer', problem: "is null: only the embedded development OpenID Provider serves this means (development mode); name the provider's issuer" });
    return { report, problems };
  }
  const location = discoveryUrl(issuer);
  report.redirectUri = new URL(`/oidc/${means.id}/callback`, context.publicUrl).href;
  report.clientId = means.oidc.clientId;
  if (means.oidc.clientSecretEnv && !process.env[means.oidc.clientSecretEnv]) {
    problems.push({ severity: 'warning', source: means.source, field: 'oidc.clientSecretEnv', problem: `the environment variable ${means.oidc.clientSecretEnv} is not set here: Brána refuses to start without it` });
  }
  try {
    const discovery = parseDiscovery(await fetchDocument(location, 'application/json', means.oidc.timeoutSeconds * 1000), { source: location, issuer }).value;
    report.discovery = {
      location,
      issuer: discovery.issuer,
      authorizationEndpoint: discovery.authorization_endpoint,
      tokenEndpoint: discovery.token_endpoint,
      userinfoEndpoint: discovery.userinfo_endpoint ?? null,
      jwksUri: discovery.jwks_uri,
      idTokenSigningAlgorithms: discovery.id_token_signing_alg_values_supported ?? null,
      authorizationResponseIssParameterSupported: discovery.authorization_response_iss_parameter_supported ?? false,
      codeChallengeMethods: discovery.code_challenge_methods_supported ?? null,
      acrValuesSupported: discovery.acr_values_supported ?? null,
    };
    const algorithms = discovery.id_token_signing_alg_values_supported;
    if (algorithms && !algorithms.includes('RS256')) problems.push({ severity: 'error', source: location, field: 'id_token_signing_alg_values_supported', problem: `does not include RS256, which Brána asks for (offered: ${algorithms.join(', ')})` });
    if (!discovery.authorization_response_iss_parameter_supported) {
      problems.push({ severity: 'warning', source: location, field: 'authorization_response_iss_parameter_supported', problem: 'is not true: the provider does not name itself in its answers (RFC 9207), so Brána cannot tell it from another provider by the answer alone' });
    }
  } catch (err) {
    if (!(err instanceof ConfigurationError)) {
      problems.push({ severity: 'error', source: means.source, field: 'oidc.issuer', problem: `the discovery document cannot be read from ${location} (${(err as Error).message})` });
    } else {
      problems.push({ severity: 'error', source: location, field: err.field, problem: err.message.slice(`${err.source}: ${err.field}: `.length) });
    }
  }
  report.accepts = {
    acr: { registeredMaximum: means.loa, understood: ALL_LOA_URIS, mapped: means.oidc.acr satisfies Record<string, Loa> },
    attributes: means.oidc.claims,
    from: means.oidc.userinfo ? 'the userinfo endpoint' : 'the ID token',
  };
  return { report, problems };
}

/** `brana means check`: is this means usable, what Brána sends it and what it accepts from it. */
export async function checkMeans(means: IdentityMeans, context: DoctorContext, captured?: CapturedResponse): Promise<DoctorReport> {
  if (means.protocol === 'saml') return checkSaml(means, context, captured);
  if (captured) throw new ConfigurationError(means.source, 'protocol', 'is oidc: --response takes a SAMLResponse');
  return checkOidc(means, context);
}
