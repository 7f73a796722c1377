import { attribute, type AttributeId } from '../../domain/attributes.ts';
import { NS } from './xml.ts';

const URI_NAME_FORMAT = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';

/** The eIDAS AuthnRequest extensions NIA-style means expect: SPType and RequestedAttributes. */
export function eidasExtensions(spType: 'public' | 'private', requested: readonly AttributeId[]): Record<string, unknown> {
  return {
    'eidas:SPType': { '@xmlns:eidas': NS.eidas, '#text': spType },
    'eidas:RequestedAttributes': {
      '@xmlns:eidas': NS.eidas,
      'eidas:RequestedAttribute': requested.map((id) => ({
        '@Name': attribute(id).samlName,
        '@NameFormat': URI_NAME_FORMAT,
        '@isRequired': 'true',
      })),
    },
  };
}
