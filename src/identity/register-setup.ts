import { ConfigurationError } from '../config/configuration-error.ts';
import type { PopulationRegisterSettings } from '../config/environment.ts';
import { EmbeddedRegister } from './embedded-register.ts';
import { HttpRegister } from './http-register.ts';
import type { PopulationRegister } from './population-register.ts';

export interface OpenedRegister {
  register: PopulationRegister;
  /** Asks a register service whether it answers (throws if not); null: an embedded register, always there. */
  probe: (() => Promise<void>) | null;
}

/**
 * The population register the settings name: the embedded file, or the register service. A broker
 * in production mode never falls back to the development test citizens: it does not start.
 */
export function openPopulationRegister(settings: PopulationRegisterSettings | null): OpenedRegister {
  if (!settings) {
    throw new ConfigurationError(
      'environment',
      'BRANA_POPULATION_REGISTER_URL',
      "production mode needs a population register (the register service's https URL, or BRANA_POPULATION_REGISTER with a pilot's register file); the development test citizens are never used in production",
    );
  }
  if (settings.kind === 'embedded') return { register: EmbeddedRegister.fromFile(settings.file), probe: null };
  const register = new HttpRegister({ url: settings.url, timeoutMs: settings.timeoutMs, bearerToken: settings.bearerToken });
  return { register, probe: () => register.probe() };
}
