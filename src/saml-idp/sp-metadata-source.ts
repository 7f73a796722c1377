import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { ConfigurationError } from '../config/configuration-error.ts';
import { SpMetadataRefused, type SpMetadataInput } from '../oidc/registration-form-routes.ts';
import type { SamlRegistration } from '../sep/sep-registration.ts';
import type { SamlSepStore } from '../sep/saml-service-provider.ts';
import { MAX_SP_METADATA_LENGTH, parseServiceProviderMetadata } from './sp-metadata.ts';

/** How long fetching a SeP's SP metadata may take. */
const FETCH_TIMEOUT_MS = 10_000;

/**
 * Addresses a URL a SeP names must never make Brána connect to (SSRF): loopback, private networks,
 * link-local (cloud metadata services), carrier-grade NAT, multicast and the rest of the special-use
 * ranges. Checked on the address actually connected to, so a name that resolves differently the
 * second time (DNS rebinding) gains nothing.
 */
const SPECIAL_USE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 127],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv6');

const NOT_CONNECTED = 'names an address Brána does not connect to (a private or special-use network)';

/** A SeP's SP metadata could not be fetched; `message` is for the person who gave the URL. */
export class SpMetadataUnavailable extends Error {}

export function isSpecialUseAddress(address: string): boolean {
  const family = isIP(address);
  return family === 0 || SPECIAL_USE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface SpMetadataFetchOptions {
  /** Development: SePs on this machine (loopback) may be fetched from. */
  allowLoopback: boolean;
  /** The certificate authorities to trust instead of the system's (a private PKI; tests). */
  ca?: readonly string[];
}

/**
 * Fetches a SeP's SP metadata from an https URL that someone outside gave Brána (the `/register`
 * form): https only, no redirects, at most 512 kB, 10 seconds, and never from a special-use address
 * (`allowLoopback`: development, where SePs run on this machine).
 */
export function fetchSpMetadata(source: string, options: SpMetadataFetchOptions): Promise<string> {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return Promise.reject(new SpMetadataUnavailable('is not a URL'));
  }
  if (url.protocol !== 'https:') return Promise.reject(new SpMetadataUnavailable('must be an https URL'));
  const allowed = (address: string) => !isSpecialUseAddress(address) || (options.allowLoopback && (address === '127.0.0.1' || address === '::1'));
  // An address in the URL itself is connected to without any lookup: checked here.
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(literal) && !allowed(literal)) return Promise.reject(new SpMetadataUnavailable(NOT_CONNECTED));
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      {
        timeout: FETCH_TIMEOUT_MS,
        ...(options.ca ? { ca: [...options.ca] } : {}),
        headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' },
        lookup: (hostname, lookupOptions, callback) => {
          dnsLookup(hostname, { ...lookupOptions, all: true }, (err, addresses: LookupAddress[]) => {
            if (err) return callback(err, '', 4);
            const usable = addresses.filter((entry) => allowed(entry.address));
            if (!usable.length) return callback(new SpMetadataUnavailable(NOT_CONNECTED), '', 4);
            if (lookupOptions.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
            return callback(null, usable[0]!.address, usable[0]!.family);
          });
        },
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new SpMetadataUnavailable(`answered HTTP ${response.statusCode ?? '?'}${response.statusCode && response.statusCode >= 300 && response.statusCode < 400 ? ' (a redirect: give the final URL)' : ''}`));
          return;
        }
        const chunks: Buffer[] = [];
        let length = 0;
        response.on('data', (chunk: Buffer) => {
          length += chunk.length;
          if (length > MAX_SP_METADATA_LENGTH) {
            request.destroy(new SpMetadataUnavailable(`is larger than ${MAX_SP_METADATA_LENGTH} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', (err) => reject(err instanceof SpMetadataUnavailable ? err : new SpMetadataUnavailable(`cannot be fetched (${err.message})`)));
      },
    );
    request.on('timeout', () => request.destroy(new SpMetadataUnavailable('did not answer in time')));
    request.on('error', (err) => reject(err instanceof SpMetadataUnavailable ? err : new SpMetadataUnavailable(`cannot be fetched (${err.message})`)));
  });
}

/**
 * Reads a SAML SeP's SP metadata given in the `/register` form — pasted, or fetched from an https URL —
 * as strictly as the CLI does (`parseServiceProviderMetadata`); what is wrong is a SpMetadataRefused
 * naming the metadata's field, for the person at the form.
 */
export function spMetadataReader(options: SpMetadataFetchOptions & { samlSeps: SamlSepStore }): (input: SpMetadataInput) => Promise<SamlRegistration> {
  return async (input) => {
    let xml: string;
    const source = 'xml' in input ? 'metadata' : input.url;
    if ('xml' in input) xml = input.xml;
    else {
      try {
        xml = await fetchSpMetadata(input.url, { allowLoopback: options.allowLoopback, ...(options.ca ? { ca: options.ca } : {}) });
      } catch (err) {
        if (err instanceof SpMetadataUnavailable) throw new SpMetadataRefused(err.message);
        throw err;
      }
    }
    let serviceProvider;
    try {
      serviceProvider = parseServiceProviderMetadata(xml, source, { allowLoopbackHttp: options.allowLoopback });
    } catch (err) {
      if (err instanceof ConfigurationError) throw new SpMetadataRefused(err.message.startsWith(`${source}: `) ? err.message.slice(source.length + 2) : err.message);
      throw err;
    }
    // Before the initial access token is used up: the entity ID is one SeP's (the unique key decides a race).
    if (await options.samlSeps.findByEntityId(serviceProvider.entityId)) throw new SpMetadataRefused(`entityID: ${serviceProvider.entityId} is registered for another SeP`);
    return { serviceProvider, metadata: { xml, source: 'xml' in input ? 'self-service (web form)' : input.url } };
  };
}
