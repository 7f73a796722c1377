import { changedFields } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import { registrationOf, type Sep } from '../sep/sep.ts';

/**
 * A SeP as an administrator reviews it: the registration in force, the change it asked for (and
 * which fields that change touches), and who else is in its SeP group — a SeP in a group gets the
 * same pseudonyms as every other member, so a group shared across organisations links people.
 */
export async function reviewOf(seps: SepStore, sep: Sep): Promise<Record<string, unknown>> {
  const members = (await seps.listGroup(sep.group)).filter((other) => other.clientId !== sep.clientId);
  const requestedGroup = sep.requestedRegistration?.group;
  const requestedMembers = requestedGroup && requestedGroup !== sep.group ? (await seps.listGroup(requestedGroup)).filter((other) => other.clientId !== sep.clientId) : [];
  const describe = (other: Sep) => ({ clientId: other.clientId, organisation: other.organisation, status: other.status });
  const { requestedRegistration, ...inForce } = sep;
  return {
    ...inForce,
    createdAt: new Date(sep.createdAt).toISOString(),
    updatedAt: new Date(sep.updatedAt).toISOString(),
    groupMembers: members.map(describe),
    requestedChange: requestedRegistration
      ? { changed: changedFields(registrationOf(sep), { ...requestedRegistration, clientId: sep.clientId }), registration: requestedRegistration, groupMembers: requestedMembers.map(describe) }
      : null,
  };
}
