import type { NextFunction, Request, Response } from 'express';
import type { Operator, OperatorCredentials, OperatorRole } from './operator-credentials.ts';

export interface RequireOperatorOptions {
  /**
   * Also accept the token as the password of HTTP Basic authentication (any user name), so that a
   * browser can open an operator page: it asks for the credential itself. Only for read-only pages.
   */
  basic?: boolean;
  /** Told about an operator who presented a valid credential of another role (before the 403). */
  onForbidden?: (operator: Operator, req: Request) => Promise<void>;
}

function presentedToken(req: Request, basic: boolean): string | undefined {
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer ([^\s]+)$/.exec(header);
  if (bearer) return bearer[1];
  const credentials = basic ? /^Basic ([A-Za-z0-9+/=]+)$/.exec(header) : null;
  if (!credentials) return undefined;
  const decoded = Buffer.from(credentials[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : undefined;
}

/**
 * Express middleware for operator APIs: a bearer token of one of these roles, or 401/403 as JSON.
 * The operator is left in `res.locals.operator` for the handler (and its audit record).
 */
export function requireOperator(credentials: OperatorCredentials, role: OperatorRole | readonly OperatorRole[], options: RequireOperatorOptions = {}) {
  const roles: readonly OperatorRole[] = typeof role === 'string' ? [role] : role;
  const realm = `brana-${roles.join('-')}`;
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const token = presentedToken(req, options.basic ?? false);
      const operator = token ? await credentials.authenticate(token) : undefined;
      if (!operator) {
        const challenge = options.basic ? `Basic realm="${realm}", charset="UTF-8"` : `Bearer realm="${realm}"`;
        res.status(401).set('WWW-Authenticate', challenge).json({ error: 'unauthorized', error_description: `a valid ${roles.join(' or ')} credential is required` });
        return;
      }
      if (!roles.includes(operator.role)) {
        await options.onForbidden?.(operator, req);
        res.status(403).json({ error: 'forbidden', error_description: `this endpoint is for the ${roles.join(' or ')} role` });
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
