/**
 * A mistake in the operator's configuration: names where (file or environment variable) and which
 * field is wrong, so it is found at start and never surfaces as a stack trace at the first login.
 */
export class ConfigurationError extends Error {
  readonly source: string;
  readonly field: string;

  constructor(source: string, field: string, problem: string) {
    super(`${source}: ${field}: ${problem}`);
    this.name = 'ConfigurationError';
    this.source = source;
    this.field = field;
  }
}

/** Turns zod issues into one readable line per problem, each naming the field. */
export function describeIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string[] {
  return issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join('.') : '(root)';
    return `${field}: ${issue.message}`;
  });
}

export interface ConfigurationProblem {
  field: string;
  problem: string;
}

/**
 * Several mistakes found at once (every wrong environment variable, not only the first): the message
 * has one line per problem, each naming the source and the field.
 */
export class ConfigurationErrors extends ConfigurationError {
  readonly problems: readonly ConfigurationProblem[];

  constructor(source: string, problems: readonly ConfigurationProblem[]) {
    const [first = { field: '(unknown)', problem: 'is not valid' }] = problems;
    super(source, first.field, first.problem);
    this.name = 'ConfigurationErrors';
    this.problems = problems;
    this.message = problems.map((p) => `${source}: ${p.field}: ${p.problem}`).join('\n');
  }
}
