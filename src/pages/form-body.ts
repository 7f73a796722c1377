import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Why a form body could not be read: over its size or field-count limit, or anything else (compressed, another charset…). */
export type UnreadableForm = 'too_large' | 'malformed';

/**
 * Reads a form a browser posts with `parser`; a body the parser refuses is not an error of the
 * server but a message refused like any other: `refuse` answers it (and logs it) in the caller's
 * terms, and nothing else runs.
 */
export function formOrRefusal(parser: RequestHandler, refuse: (req: Request, res: Response, why: UnreadableForm) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    parser(req, res, (err?: unknown) => {
      if (!err) {
        next();
        return;
      }
      const type = (err as { type?: string }).type;
      refuse(req, res, type === 'entity.too.large' || type === 'parameters.too.many' ? 'too_large' : 'malformed').catch(next);
    });
  };
}
