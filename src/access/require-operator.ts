import type { NextFunction, Request, Response } from 'express';
import type { Operator, OperatorCredentials, OperatorRole } from './operator-credentials.ts';

/**
 * Express middleware for operator APIs: a bearer token of exactly this role, or 401/403 as JSON.
 * The operator is left in `res.locals.operator` for the handler (and its audit record).
 */
export function requireOperator(credentials: OperatorCredentials, role: OperatorRole) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const header = req.headers.authorization ?? '';
      const match = /^Bearer ([^\s]+)$/.exec(header);
      const operator = match ? await credentials.authenticate(match[1]!) : undefined;
      if (!operator) {
        res.status(401).set('WWW-Authenticate', `Bearer realm="brana-${role}"`).json({ error: 'unauthorized', error_description: `a valid ${role} credential is required` });
        return;
      }
      if (operator.role !== role) {
        res.status(403).json({ error: 'forbidden', error_description: `this endpoint is for the ${role} role` });
        return;
      }
      res.locals.operator = operator satisfies Operator;
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function operatorOf(res: Response): Operator {
  const operator = res.locals.operator as Operator | undefined;
  if (!operator) throw new Error('requireOperator did not run before this handler');
  return operator;
}
