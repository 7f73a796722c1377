import type { Command } from 'commander';
import { StaffRoles, STAFF_ROLES, isStaffRole } from '../access/staff-roles.ts';
import type { AssertionLog } from '../audit/assertion-log.ts';
import type { Environment } from '../config/environment.ts';
import { StaffChangeRefused, StaffDirectory } from '../console/staff-directory.ts';
import { PersonStore } from '../identity/person-store.ts';
import { readOrCreatePseudonymSecret } from '../keys/key-store.ts';
import { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { Database } from '../store/database.ts';
import { OperatorError } from './operator-error.ts';

type WithStore = <T>(action: (context: { env: Environment; db: Database; log: AssertionLog }) => Promise<T>) => Promise<T>;

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function roleOf(value: string) {
  if (!isStaffRole(value)) throw new OperatorError(`--role: must be one of ${STAFF_ROLES.join(', ')}`);
  return value;
}

/** `brana staff grant|revoke|list`: who may use the consoles, and in which role. */
export function addStaffCommands(program: Command, withStore: WithStore): void {
  const staff = program.command('staff').description('roles of people in the consoles (auditor, administrator, operator), by their register id');
  const directory = async ({ env, db, log }: { env: Environment; db: Database; log: AssertionLog }) =>
    new StaffDirectory({ db, roles: new StaffRoles(db), persons: new PersonStore(db), pseudonyms: new Pseudonyms(await readOrCreatePseudonymSecret(env.keysDir)), log });

  staff
    .command('grant <registerId>')
    .description('give a person a role in the consoles; they sign in through Brána at LoA high')
    .requiredOption('--role <role>', `one of ${STAFF_ROLES.join(', ')}`)
    .requiredOption('--name <name>', 'the name the assertion log gives them as the actor of what they do')
    .action(async (registerId: string, options: { role: string; name: string }) => {
      const role = roleOf(options.role);
      await withStore(async (context) => {
        try {
          const { granted } = await (await directory(context)).grant(registerId, role, options.name, 'cli');
          print({ registerId, role, name: options.name.trim(), granted, ...(granted ? {} : { note: 'the person already holds this role; nothing was changed' }) });
        } catch (err) {
          if (err instanceof StaffChangeRefused) throw new OperatorError(err.message);
          throw err;
        }
      });
    });

  staff
    .command('revoke <registerId>')
    .description('take a role away; an open console of that person loses it at the next click')
    .requiredOption('--role <role>', `one of ${STAFF_ROLES.join(', ')}`)
    .action(async (registerId: string, options: { role: string }) => {
      const role = roleOf(options.role);
      await withStore(async (context) => {
        const { revoked } = await (await directory(context)).revoke(registerId, role, 'cli');
        if (!revoked) throw new OperatorError(`${registerId} does not hold the role ${role}; nothing was changed`);
        print({ registerId, role, name: revoked.name, revoked: true });
      });
    });

  staff
    .command('list')
    .description('list who holds which role')
    .action(async () => {
      await withStore(async ({ db }) => {
        print((await new StaffRoles(db).list()).map((grant) => ({ registerId: grant.registerId, role: grant.role, name: grant.name, grantedAt: new Date(grant.grantedAt).toISOString(), grantedBy: grant.grantedBy })));
      });
    });
}
