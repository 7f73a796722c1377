import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { demoSepRegistration } from './demo-sep.ts';

/** What the demo SAML SeP is registered as in Brána: the demo portal's second door, in the same SeP group. */
export const DEMO_SAML_SEP_CLIENT_ID = 'demo-portal-obcana-saml';

const EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/';

/**
 * The demo portal's registration as a SAML SeP: the same organisation and SeP group as its OIDC
 * door (so a citizen gets the same pseudonym through either), its return URLs taken from its SP
 * metadata when it is registered.
 */
export function demoSamlSepRegistration(origin: string) {
  const { redirectUris: _fromMetadata, postLogoutRedirectUris: _none, ...document } = demoSepRegistration(origin);
  return { ...document, clientId: DEMO_SAML_SEP_CLIENT_ID, name: { cs: 'Portál občana (ukázka, SAML)', en: 'Citizen Portal (demo, SAML)' } };
}

export interface DemoSamlOptions {
  origin: string;
  /** Brána's SAML IdP: its SSO URL, entity ID and signing certificate (from its metadata). */
  idp: { ssoUrl: string; entityId: string; certificatePem: string };
  signing: { privateKeyPem: string; certificatePem: string };
  encryption: { privateKeyPem: string; certificatePem: string };
}

/**
 * The demo portal's SAML side on node-saml, configured as a portal built for NIA would be: signed
 * AuthnRequests (RSA-SHA256) with eIDAS RequestedAttributes and a minimum LoA, signed Responses and
 * signed, encrypted Assertions required, InResponseTo always checked.
 */
export function demoSamlServiceProvider(options: DemoSamlOptions): SAML {
  const attribute = (name: string, required: boolean) => ({ '@Name': `${EIDAS}${name}`, '@NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri', '@isRequired': String(required) });
  return new SAML({
    entryPoint: options.idp.ssoUrl,
    idpIssuer: options.idp.entityId,
    idpCert: options.idp.certificatePem,
    issuer: `${options.origin}/saml/metadata`,
    callbackUrl: `${options.origin}/saml/acs`,
    privateKey: options.signing.privateKeyPem,
    publicCert: options.signing.certificatePem,
    decryptionPvk: options.encryption.privateKeyPem,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    identifierFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    authnContext: ['http://eidas.europa.eu/LoA/substantial'],
    racComparison: 'minimum',
    validateInResponseTo: ValidateInResponseTo.always,
    acceptedClockSkewMs: 5_000,
    samlAuthnRequestExtensions: {
      'eidas:SPType': { '@xmlns:eidas': 'http://eidas.europa.eu/saml-extensions', '#text': 'public' },
      'eidas:RequestedAttributes': {
        '@xmlns:eidas': 'http://eidas.europa.eu/saml-extensions',
        'eidas:RequestedAttribute': [attribute('CurrentGivenName', true), attribute('CurrentFamilyName', true), attribute('DateOfBirth', false), attribute('CurrentAddress', false)],
      },
    },
  });
}

/** The SP metadata Brána registers the demo SAML SeP from. */
export function demoSamlMetadata(saml: SAML, options: Pick<DemoSamlOptions, 'signing' | 'encryption'>): string {
  return saml.generateServiceProviderMetadata(options.encryption.certificatePem, options.signing.certificatePem);
}
