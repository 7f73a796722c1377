import { SAML, ValidateInResponseTo, type Profile, type SamlConfig } from '@node-saml/node-saml';
import type { Response } from 'supertest';
import { generateSelfSignedCertificate, type KeyPairWithCertificate } from '../../src/keys/certificate.ts';
import { samlIdpEndpoints } from '../../src/saml-idp/idp-metadata.ts';
import { parseServiceProviderMetadata } from '../../src/saml-idp/sp-metadata.ts';
import { formAction, hiddenFields } from './html.ts';
import { Citizen, chooseMeans, decideConsent, loginAtIdp, postToAcs } from './login-driver.ts';
import { sepDocument, type TestBroker } from './test-broker.ts';

/** Keys are made once per run: RSA key generation is slow and not what the tests test. */
let sharedKeys: { signing: KeyPairWithCertificate; encryption: KeyPairWithCertificate } | undefined;
export function samlSepKeys(): { signing: KeyPairWithCertificate; encryption: KeyPairWithCertificate } {
  sharedKeys ??= { signing: generateSelfSignedCertificate('test SAML SeP signing'), encryption: generateSelfSignedCertificate('test SAML SeP encryption') };
  return sharedKeys;
}

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';
let counter = 0;

export interface SamlSep {
  clientId: string;
  entityId: string;
  acsUrl: string;
  sloUrl: string;
  /** node-saml, configured as a SeP built for NIA would be. */
  saml: SAML;
  metadataXml: string;
  keys: { signing: KeyPairWithCertificate; encryption: KeyPairWithCertificate };
}

export interface SamlSepOptions {
  registration?: Record<string, unknown>;
  /** eIDAS RequestedAttributes: [name (short eIDAS natural-person name or full URI), isRequired, eidas:AttributeValue]. */
  requestedAttributes?: Array<[string, boolean] | [string, boolean, string]>;
  loa?: string;
  binding?: 'HTTP-Redirect' | 'HTTP-POST';
  forceAuthn?: boolean;
  passive?: boolean;
  config?: Partial<SamlConfig>;
  /** Register the SeP (default) or only build the SP. */
  register?: boolean;
  /** The binding of its SingleLogoutService in the metadata (node-saml writes HTTP-POST). */
  sloBinding?: 'HTTP-Redirect' | 'HTTP-POST';
  /** Changes the metadata before it is registered (e.g. the encryption it lists). */
  editMetadata?: (xml: string) => string;
  /** Its own keys (default: the keys all test SePs share). */
  keys?: { signing: KeyPairWithCertificate; encryption: KeyPairWithCertificate };
  /** Its entity ID and ACS (default: new ones). */
  entityId?: string;
  acsUrl?: string;
}

/** node-saml's request extensions for eIDAS: SPType and RequestedAttributes. */
function eidasExtensions(attributes: Array<[string, boolean] | [string, boolean, string]>): Record<string, unknown> {
  return {
    'eidas:SPType': { '@xmlns:eidas': 'http://eidas.europa.eu/saml-extensions', '#text': 'public' },
    'eidas:RequestedAttributes': {
      '@xmlns:eidas': 'http://eidas.europa.eu/saml-extensions',
      'eidas:RequestedAttribute': attributes.map(([name, required, value]) => ({
        '@Name': name.startsWith('http') ? name : `${EIDAS}${name}`,
        '@NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
        '@isRequired': String(required),
        ...(value !== undefined ? { 'eidas:AttributeValue': value } : {}),
      })),
    },
  };
}

/** A SeP built on node-saml (as a municipal portal would be), registered at Brána from its SP metadata. */
export async function samlSep(brana: TestBroker, options: SamlSepOptions = {}): Promise<SamlSep> {
  counter += 1;
  const keys = options.keys ?? samlSepKeys();
  const entityId = options.entityId ?? `https://portal${counter}.example.cz/saml/${process.pid}`;
  const acsUrl = options.acsUrl ?? `https://portal${counter}.example.cz/saml/acs`;
  const endpoints = samlIdpEndpoints(brana.url);
  const saml = new SAML({
    entryPoint: endpoints.ssoUrl,
    issuer: entityId,
    callbackUrl: acsUrl,
    logoutUrl: endpoints.sloUrl,
    logoutCallbackUrl: acsUrl.replace(/\/acs$/, '/slo'),
    idpCert: brana.broker.keys.samlSigning.certificatePem,
    idpIssuer: endpoints.entityId,
    privateKey: keys.signing.privateKeyPem,
    publicCert: keys.signing.certificatePem,
    decryptionPvk: keys.encryption.privateKeyPem,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    identifierFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    authnContext: [options.loa ?? 'http://eidas.europa.eu/LoA/substantial'],
    racComparison: 'minimum',
    validateInResponseTo: ValidateInResponseTo.always,
    acceptedClockSkewMs: 5_000,
    forceAuthn: options.forceAuthn ?? false,
    passive: options.passive ?? false,
    authnRequestBinding: options.binding ?? 'HTTP-Redirect',
    // node-saml deflates a POSTed request too unless told not to; SAML Bindings §3.5.4 says base64 only.
    skipRequestCompression: options.binding === 'HTTP-POST',
    samlAuthnRequestExtensions: eidasExtensions(options.requestedAttributes ?? [['CurrentGivenName', true], ['CurrentFamilyName', true], ['DateOfBirth', false]]),
    ...options.config,
  });
  let metadataXml = saml.generateServiceProviderMetadata(keys.encryption.certificatePem, keys.signing.certificatePem);
  if (options.sloBinding === 'HTTP-Redirect') metadataXml = metadataXml.replace(/(<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:)HTTP-POST/, '$1HTTP-Redirect');
  if (options.editMetadata) metadataXml = options.editMetadata(metadataXml);
  let clientId = '';
  if (options.register ?? true) {
    const serviceProvider = parseServiceProviderMetadata(metadataXml, 'sp-metadata.xml', { allowLoopbackHttp: true });
    const registered = await brana.broker.registration.register(sepDocument({ redirectUris: serviceProvider.assertionConsumerServices.map((service) => service.url), ...options.registration }), 'active', 'test', {
      saml: { serviceProvider, metadata: { xml: metadataXml, source: 'sp-metadata.xml' } },
    });
    clientId = registered.sep.clientId;
  }
  return { clientId, entityId, acsUrl, sloUrl: acsUrl.replace(/\/acs$/, '/slo'), saml, metadataXml, keys };
}

/** The SeP sends the citizen to Brána: the Redirect binding's URL, or the POST binding's form posted. */
export async function sendToBrana(sep: SamlSep, citizen: Citizen, relayState = 'back-to-page-7'): Promise<Response> {
  if ((sep.saml.options.authnRequestBinding ?? 'HTTP-Redirect') === 'HTTP-POST') {
    const html = await sep.saml.getAuthorizeFormAsync(relayState, undefined, {});
    return citizen.post(formAction(html), hiddenFields(html));
  }
  return citizen.get(await sep.saml.getAuthorizeUrlAsync(relayState, undefined, {}));
}

/** What the browser posts to the SeP's ACS at the end: the autopost form's action and fields. */
export interface SamlAnswer {
  acs: string;
  SAMLResponse: string;
  RelayState: string | undefined;
  xml: string;
}

export function samlAnswerOf(page: Response): SamlAnswer {
  if (page.status !== 200) throw new Error(`expected the page that posts to the SeP, got ${page.status}: ${page.text.slice(0, 300)}`);
  const fields = hiddenFields(page.text);
  if (!fields.SAMLResponse) throw new Error(`no SAMLResponse on the page: ${page.text.slice(0, 300)}`);
  return { acs: formAction(page.text), SAMLResponse: fields.SAMLResponse, RelayState: fields.RelayState, xml: Buffer.from(fields.SAMLResponse, 'base64').toString('utf8') };
}

/** A whole SAML login of a test citizen through one means, with consent; returns what the SeP received. */
export async function samlLogin(brana: TestBroker, sep: SamlSep, options: { means: string; login: string; citizen?: Citizen; consent?: 'agree' | 'refuse' }): Promise<{ answer: SamlAnswer; citizen: Citizen }> {
  const citizen = options.citizen ?? new Citizen(brana.url.origin);
  let page = await citizen.follow(await sendToBrana(sep, citizen));
  if (page.status === 200 && /name="means"/.test(page.text)) page = await chooseMeans(citizen, page, options.means);
  const idp = await loginAtIdp(citizen, page, options.login);
  let next = await postToAcs(citizen, idp.acs, idp.fields);
  if (next.status === 200 && /name="decision"/.test(next.text)) next = await decideConsent(citizen, next, options.consent ?? 'agree');
  return { answer: samlAnswerOf(next), citizen };
}

/** The SeP (node-saml) validates and decrypts what it received. */
export async function validatedBySep(sep: SamlSep, answer: SamlAnswer): Promise<Profile> {
  const { profile } = await sep.saml.validatePostResponseAsync({ SAMLResponse: answer.SAMLResponse, ...(answer.RelayState !== undefined ? { RelayState: answer.RelayState } : {}) });
  if (!profile) throw new Error('node-saml returned no profile');
  return profile;
}
