/** A failure the operator caused and can fix: printed as one line, exit code 2. */
export class OperatorError extends Error {}
