import type { AssertionLog } from '../audit/assertion-log.ts';
import { describeIssues } from '../config/configuration-error.ts';
import type { Database } from '../store/database.ts';
import { registrationSchema, type RegistrationContext, type SepStatus } from './sep.ts';
import type { RegisteredSep, SepStore } from './sep-store.ts';

/** A registration refused for its content; `problems` name each field. */
export class RegistrationRejected extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/**
 * Registering a SeP: validate the whole document, then write the registration and its
 * administrative record in one transaction, so nothing half-written can stay behind.
 */
export class SepRegistration {
  private readonly db: Database;
  private readonly seps: SepStore;
  private readonly log: AssertionLog;
  private readonly context: RegistrationContext;

  constructor(db: Database, seps: SepStore, log: AssertionLog, context: RegistrationContext) {
    this.db = db;
    this.seps = seps;
    this.log = log;
    this.context = context;
  }

  validate(document: unknown) {
    const parsed = registrationSchema(this.context).safeParse(document);
    if (!parsed.success) throw new RegistrationRejected(describeIssues(parsed.error.issues));
    return parsed.data;
  }

  async register(document: unknown, status: SepStatus, actor: string): Promise<RegisteredSep> {
    const registration = this.validate(document);
    return this.db.transaction(async (trx) => {
      const registered = await this.seps.register(registration, status, trx);
      await this.log.append(
        {
          event: 'sep_registered',
          outcome: 'success',
          sepId: registered.sep.clientId,
          detail: { actor, status, group: registered.sep.group, organisationId: registered.sep.organisation.id, allowedAttributes: registered.sep.allowedAttributes, minimumLoa: registered.sep.minimumLoa },
        },
        trx,
      );
      return registered;
    });
  }

  /** The operator's switch: log attribute values (not only names) for this SeP's logins. */
  async setAttributeValueLogging(clientId: string, on: boolean, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const before = await this.seps.find(clientId, trx);
      if (!before) return false;
      await this.seps.setLogAttributeValues(clientId, on, trx);
      await this.log.append({ event: 'sep_changed', outcome: 'success', sepId: clientId, detail: { actor, field: 'logAttributeValues', from: before.logAttributeValues, to: on } }, trx);
      return true;
    });
  }

  async setStatus(clientId: string, status: SepStatus, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const before = await this.seps.find(clientId, trx);
      if (!before) return false;
      await this.seps.setStatus(clientId, status, trx);
      await this.log.append({ event: 'sep_status_changed', outcome: 'success', sepId: clientId, detail: { actor, from: before.status, to: status } }, trx);
      return true;
    });
  }
}
