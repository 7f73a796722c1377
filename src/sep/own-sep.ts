import { changedFields, type SepRegistration } from './sep-registration.ts';
import { SepAlreadyRegistered, type SepStore } from './sep-store.ts';
import { registrationOf } from './sep.ts';

/**
 * Registers one of Brána's own SePs (My account, the consoles) on the first start, and brings it
 * back to its definition (a changed public URL, environment, release). An administrator may have
 * disabled it on purpose: its status is left alone.
 */
export async function ensureOwnSep(registration: SepRegistration, seps: SepStore, wanted: { clientId: string } & Record<string, unknown>): Promise<void> {
  const desk = registration.forBrana();
  const current = await seps.find(wanted.clientId);
  if (!current) {
    try {
      await desk.register(wanted, 'active', 'brana');
    } catch (err) {
      // Another node of the cluster registered it at the same moment.
      if (!(err instanceof SepAlreadyRegistered) && !(await seps.find(wanted.clientId))) throw err;
    }
    return;
  }
  if (changedFields(registrationOf(current), desk.validate(wanted)).length) await desk.replaceByOperator(wanted.clientId, wanted, 'brana');
}
