import type { PopulationRegisterSettings } from '../config/environment.ts';
import { EmbeddedRegister } from './embedded-register.ts';
import { HttpRegister } from './http-register.ts';
import type { PopulationRegister } from './population-register.ts';

export interface OpenedRegister {
  register: PopulationRegister;
  /** Asks a register service whether it answers (throws if not); null: an embedded register, always there. */
  probe: (() => Promise<void>) | null;
}

/** The population register the settings name: the embedded file, or the register service. */
export function openPopulationRegister(settings: PopulationRegisterSettings): OpenedRegister {
  if (settings.kind === 'embedded') return { register: EmbeddedRegister.fromFile(settings.file), probe: null };
  const register = new HttpRegister({ url: settings.url, timeoutMs: settings.timeoutMs, bearerToken: settings.bearerToken });
  return { register, probe: () => register.probe() };
}
