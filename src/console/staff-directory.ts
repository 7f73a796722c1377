import type { StaffGrant, StaffRole, StaffRoles } from '../access/staff-roles.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { staffGranted, staffRevoked } from '../audit/audit-events.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { Database } from '../store/database.ts';
import { CONSOLE_GROUP } from './console-sep.ts';

/** A register id as the population register writes it: letters, digits and dashes, nothing a log or a page could misread. */
export const REGISTER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A grant the operator must correct; nothing was changed. */
export class StaffChangeRefused extends Error {}

/**
 * Granting and revoking staff roles, each change with its record in the assertion log in one
 * transaction. The record names the person by the name the role is granted under and by their
 * pseudonym in the consoles' group — the person is known to Brána from the grant on, as from a
 * first login — never by the register id.
 */
export class StaffDirectory {
  private readonly db: Database;
  private readonly roles: StaffRoles;
  private readonly persons: PersonStore;
  private readonly pseudonyms: Pseudonyms;
  private readonly log: AssertionLog;

  constructor(deps: { db: Database; roles: StaffRoles; persons: PersonStore; pseudonyms: Pseudonyms; log: AssertionLog }) {
    this.db = deps.db;
    this.roles = deps.roles;
    this.persons = deps.persons;
    this.pseudonyms = deps.pseudonyms;
    this.log = deps.log;
  }

  async grant(registerId: string, role: StaffRole, name: string, actor: string): Promise<{ granted: boolean }> {
    if (!REGISTER_ID.test(registerId)) throw new StaffChangeRefused('register id: must be the id the population register gives the person (letters, digits, dashes)');
    const shown = name.trim();
    if (!shown || shown.length > 200 || /[\u0000-\u001f]/.test(shown)) throw new StaffChangeRefused('--name: must be 1 to 200 characters on one line');
    return this.db.transaction(async (trx) => {
      // One person, one name in the log: a second role is granted under the name of the first.
      const held = (await this.roles.of(registerId, trx)).find((grant) => grant.name !== shown);
      if (held) throw new StaffChangeRefused(`--name: ${registerId} holds the role ${held.role} as "${held.name}"; grant further roles under that name (or revoke it first)`);
      const { person } = await this.persons.findOrCreate(registerId, trx);
      const granted = await this.roles.grant({ registerId, role, name: shown, grantedBy: actor }, trx);
      if (granted) await this.log.append(staffGranted({ actor, name: shown, role, pseudonym: this.pseudonyms.forGroup(person.id, CONSOLE_GROUP) }), trx);
      return { granted };
    });
  }

  async revoke(registerId: string, role: StaffRole, actor: string): Promise<{ revoked: StaffGrant | undefined }> {
    return this.db.transaction(async (trx) => {
      const revoked = await this.roles.revoke(registerId, role, trx);
      if (revoked) {
        const { person } = await this.persons.findOrCreate(registerId, trx);
        await this.log.append(staffRevoked({ actor, name: revoked.name, role, pseudonym: this.pseudonyms.forGroup(person.id, CONSOLE_GROUP) }), trx);
      }
      return { revoked };
    });
  }
}
