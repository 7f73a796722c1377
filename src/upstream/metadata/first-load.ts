import { ConfigurationError } from '../../config/configuration-error.ts';
import { logger } from '../../log/logger.ts';
import type { MetadataSource } from './metadata-source.ts';

/**
 * The first load of a real means' metadata: from its source, else from the last good copy in the
 * database. A file that cannot be read or parsed at start is the operator's mistake and stops the
 * start; a URL that is down only leaves the means unavailable (failing) until it answers.
 */
export async function firstLoad(source: MetadataSource<unknown>, means: { id: string; source: string }, kind: 'file' | 'url'): Promise<void> {
  try {
    await source.refresh('start');
  } catch (err) {
    if (await source.fallBackToCache()) {
      logger.warn('identity means started on its last good metadata from the database', { means: means.id, error: (err as Error).message });
      return;
    }
    if (kind === 'file') throw err instanceof ConfigurationError ? err : new ConfigurationError(source.location, '(document)', (err as Error).message);
    logger.error('identity means is unavailable: its metadata cannot be loaded', { means: means.id, location: source.location, error: (err as Error).message });
  }
}

