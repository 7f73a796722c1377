import fs from 'node:fs/promises';
import { parseIdpMetadata, type IdpMetadata } from './idp-metadata.ts';
import { logger } from '../../log/logger.ts';

/**
 * An identity provider's metadata, loaded from wherever the means points (a file, an https URL, or
 * the embedded development IdP) and kept current. `current()` never blocks a login: it returns the
 * last good metadata.
 */
export class MetadataSource {
  readonly location: string;
  private readonly load: () => Promise<string>;
  private readonly expectedEntityId: string | undefined;
  private metadata: IdpMetadata | undefined;
  private version = 0;

  constructor(location: string, load: () => Promise<string>, expectedEntityId?: string) {
    this.location = location;
    this.load = load;
    this.expectedEntityId = expectedEntityId;
  }

  static fromFile(file: string, expectedEntityId?: string): MetadataSource {
    return new MetadataSource(file, () => fs.readFile(file, 'utf8'), expectedEntityId);
  }

  static fromUrl(url: string, expectedEntityId?: string): MetadataSource {
    return new MetadataSource(
      url,
      async () => {
        const response = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return response.text();
      },
      expectedEntityId,
    );
  }

  /** Loads and parses; on failure the last good metadata stays in use and the error is thrown. */
  async refresh(): Promise<IdpMetadata> {
    const xml = await this.load();
    const parsed = parseIdpMetadata(xml, this.location, this.expectedEntityId);
    this.metadata = parsed;
    this.version += 1;
    logger.info('identity provider metadata loaded', { location: this.location, entityId: parsed.entityId, certificates: parsed.signingCertificates.length });
    return parsed;
  }

  current(): IdpMetadata {
    if (!this.metadata) throw new Error(`metadata from ${this.location} has not been loaded`);
    return this.metadata;
  }

  /** Changes whenever new metadata is taken into use, so that derived objects can be rebuilt. */
  currentVersion(): number {
    return this.version;
  }
}
