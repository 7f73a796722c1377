import { ALL_LOA_URIS } from '../domain/loa.ts';
import { ATTRIBUTES } from '../domain/attributes.ts';
import { escapeXml } from '../domain/xml-escape.ts';
import { certificateBody, type KeyPairWithCertificate } from '../keys/certificate.ts';
import { BINDING_POST, BINDING_REDIRECT } from '../sep/saml-service-provider.ts';
import { samlId, samlInstant, signEnveloped } from './xml-signing.ts';

/** Where Brána's SAML IdP for SePs lives, from its public URL. */
export interface SamlIdpEndpoints {
  entityId: string;
  metadataUrl: string;
  ssoUrl: string;
  /** Single logout: a SeP's LogoutRequest (HTTP-Redirect or HTTP-POST). */
  sloUrl: string;
}

export const SAML_IDP_PATH = '/saml-idp';

export function samlIdpEndpoints(publicUrl: URL): SamlIdpEndpoints {
  const metadataUrl = new URL(`${SAML_IDP_PATH}/metadata`, publicUrl).href;
  return { entityId: metadataUrl, metadataUrl, ssoUrl: new URL(`${SAML_IDP_PATH}/sso`, publicUrl).href, sloUrl: new URL(`${SAML_IDP_PATH}/slo`, publicUrl).href };
}

/** How long a SeP may keep Brána's metadata before fetching it again. */
const VALID_DAYS = 7;

/**
 * Brána's IdP metadata for SePs, signed with its SAML signing key: the signing certificates SePs
 * verify Responses with, the encryption certificate, the SSO and SLO endpoints for HTTP-Redirect and
 * HTTP-POST, the NameID formats, the LoAs (eIDAS entity attribute) and the attributes it can release.
 * `signing` signs it (and every Response); `announced`: the next signing certificate during a
 * rollover, published beside it so that SePs trust both before the switch.
 */
export function idpMetadataXml(endpoints: SamlIdpEndpoints, signing: KeyPairWithCertificate, encryption: KeyPairWithCertificate, announced: readonly string[] = [], now = Date.now()): string {
  const id = samlId();
  const keyDescriptor = (use: string, pem: string) =>
    `<md:KeyDescriptor use="${use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certificateBody(pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
  const attributes = ATTRIBUTES.map((attribute) => `<saml:Attribute Name="${escapeXml(attribute.samlName)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"/>`).join('');
  const loas = ALL_LOA_URIS.map((uri) => `<saml:AttributeValue>${uri}</saml:AttributeValue>`).join('');
  const xml =
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" ID="${id}" entityID="${escapeXml(endpoints.entityId)}" validUntil="${samlInstant(now + VALID_DAYS * 86_400_000)}" cacheDuration="PT6H">` +
    `<md:Extensions><mdattr:EntityAttributes><saml:Attribute Name="urn:oasis:names:tc:SAML:attribute:assurance-certification" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${loas}</saml:Attribute></mdattr:EntityAttributes></md:Extensions>` +
    `<md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    [signing.certificatePem, ...announced].map((pem) => keyDescriptor('signing', pem)).join('') +
    keyDescriptor('encryption', encryption.certificatePem) +
    `<md:SingleLogoutService Binding="${BINDING_REDIRECT}" Location="${escapeXml(endpoints.sloUrl)}"/>` +
    `<md:SingleLogoutService Binding="${BINDING_POST}" Location="${escapeXml(endpoints.sloUrl)}"/>` +
    `<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>` +
    `<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>` +
    `<md:SingleSignOnService Binding="${BINDING_REDIRECT}" Location="${escapeXml(endpoints.ssoUrl)}"/>` +
    `<md:SingleSignOnService Binding="${BINDING_POST}" Location="${escapeXml(endpoints.ssoUrl)}"/>` +
    attributes +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`;
  return signEnveloped(xml, 'EntityDescriptor', id, signing, 'first-child');
}
