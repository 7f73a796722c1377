import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { ALWAYS_RELEASED, ATTRIBUTES, type AttributeId } from '../domain/attributes.ts';
import { LOA_LEVELS } from '../domain/loa.ts';
import type { SepEnvironment } from '../domain/sep-environment.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import { logger } from '../log/logger.ts';
import { respondServiceUnavailable } from '../pages/service-unavailable.ts';
import { isDatabaseUnavailable } from '../store/database-unavailable.ts';
import { checkRegistrationMetadata, SEP_REGISTRATION_POLICY, type RegistrationRules } from './sep-registration-policy.ts';
import { MESSAGES, type Locale } from '../pages/i18n.ts';
import { localeOf, renderPage } from '../pages/render.ts';
import { BRANA_REGISTRATION } from '../sep/registration-metadata.ts';

export interface RegistrationFormDependencies extends RegistrationRules {
  provider: Provider;
  sepEnvironment: SepEnvironment;
}

/** The form's fields, as the person typed them (shown again with the problems). */
interface FormValues {
  token: string;
  nameCs: string;
  nameEn: string;
  description: string;
  infoUrl: string;
  organisationId: string;
  organisationName: string;
  spType: string;
  legalBasis: string;
  group: string;
  minimumLoa: string;
  attributes: string[];
  redirectUris: string;
  postLogoutRedirectUris: string;
}

const EMPTY: FormValues = {
  token: '',
  nameCs: '',
  nameEn: '',
  description: '',
  infoUrl: '',
  organisationId: '',
  organisationName: '',
  spType: 'public',
  legalBasis: '',
  group: '',
  minimumLoa: 'substantial',
  attributes: [],
  redirectUris: '',
  postLogoutRedirectUris: '',
};

/** Registration metadata path → the form field it came from. */
const FIELD_OF: Array<[string, keyof FormValues]> = [
  ['redirect_uris', 'redirectUris'],
  ['post_logout_redirect_uris', 'postLogoutRedirectUris'],
  [`${BRANA_REGISTRATION}.name.cs`, 'nameCs'],
  [`${BRANA_REGISTRATION}.name.en`, 'nameEn'],
  [`${BRANA_REGISTRATION}.organisation.id`, 'organisationId'],
  [`${BRANA_REGISTRATION}.organisation.name`, 'organisationName'],
  [`${BRANA_REGISTRATION}.description`, 'description'],
  [`${BRANA_REGISTRATION}.infoUrl`, 'infoUrl'],
  [`${BRANA_REGISTRATION}.group`, 'group'],
  [`${BRANA_REGISTRATION}.spType`, 'spType'],
  [`${BRANA_REGISTRATION}.legalBasis`, 'legalBasis'],
  [`${BRANA_REGISTRATION}.minimumLoa`, 'minimumLoa'],
  [`${BRANA_REGISTRATION}.allowedAttributes`, 'attributes'],
];

const lines = (text: string) =>
  text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);

function valuesOf(body: Record<string, unknown>): FormValues {
  const text = (key: keyof FormValues) => (typeof body[key] === 'string' ? (body[key] as string).slice(0, 4000) : '');
  const attributes = ([] as unknown[]).concat(body.attributes ?? []).filter((value): value is string => typeof value === 'string');
  return {
    token: text('token').trim(),
    nameCs: text('nameCs'),
    nameEn: text('nameEn'),
    description: text('description'),
    infoUrl: text('infoUrl').trim(),
    organisationId: text('organisationId').trim(),
    organisationName: text('organisationName'),
    spType: text('spType'),
    legalBasis: text('legalBasis'),
    group: text('group').trim(),
    minimumLoa: text('minimumLoa'),
    attributes,
    redirectUris: text('redirectUris'),
    postLogoutRedirectUris: text('postLogoutRedirectUris'),
  };
}

/** The same registration metadata the registration API takes. */
function metadataOf(values: FormValues): Record<string, unknown> {
  return {
    redirect_uris: lines(values.redirectUris),
    post_logout_redirect_uris: lines(values.postLogoutRedirectUris),
    [BRANA_REGISTRATION]: {
      name: { cs: values.nameCs, en: values.nameEn },
      organisation: { id: values.organisationId, name: values.organisationName },
      description: values.description,
      infoUrl: values.infoUrl,
      group: values.group,
      spType: values.spType,
      legalBasis: values.legalBasis.trim() ? values.legalBasis : null,
      minimumLoa: values.minimumLoa,
      allowedAttributes: values.attributes,
    },
  };
}

/** One problem of the validation, placed at its form field and in the page's language. */
function placeProblem(problem: string, locale: Locale): { field: keyof FormValues | 'token'; message: string } {
  const colon = problem.indexOf(': ');
  const path = colon < 0 ? '' : problem.slice(0, colon);
  const message = colon < 0 ? problem : problem.slice(colon + 2);
  const field = FIELD_OF.find(([prefix]) => path === prefix || path.startsWith(`${prefix}.`))?.[1] ?? 'nameCs';
  return { field, message: MESSAGES[locale].register.problems[message] ?? message };
}

/**
 * `/register`: the registration API as a form for people, in Czech and English. It takes the same
 * initial access token, builds the same metadata, checks it with the same rules and messages, and
 * writes the same pending registration and registration access token.
 */
export function registrationFormRoutes(deps: RegistrationFormDependencies): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '20kb', parameterLimit: 40 });

  const show = (req: Request, res: Response, values: FormValues, problems: Array<{ field: string; message: string }>) => {
    const locale = localeOf(req);
    renderPage(
      req,
      res,
      'register',
      {
        title: MESSAGES[locale].register.title,
        values: { ...values, token: '' },
        problems,
        problemOf: Object.fromEntries(problems.map((problem) => [problem.field, problem.message])),
        environment: deps.sepEnvironment,
        loas: LOA_LEVELS,
        attributes: ATTRIBUTES.filter((definition) => !ALWAYS_RELEASED.includes(definition.id as AttributeId)).map((definition) => ({ id: definition.id, label: definition.label[locale] })),
      },
      problems.length ? 400 : 200,
    );
  };

  router.get('/', (req, res) => show(req, res, EMPTY, []));

  router.post('/', form, async (req: Request, res: Response, next: NextFunction) => {
    try {
      if (req.headers.origin !== undefined && req.headers.origin !== deps.publicUrl.origin) {
        showCitizenError(req, res, 'bad_request');
        return;
      }
      const locale = localeOf(req);
      const values = valuesOf((req.body ?? {}) as Record<string, unknown>);
      const problems: Array<{ field: string; message: string }> = [];
      const token = /^[A-Za-z0-9_-]{20,200}$/.test(values.token) ? await deps.provider.InitialAccessToken.find(values.token) : undefined;
      if (!token || !token.policies?.includes(SEP_REGISTRATION_POLICY)) problems.push({ field: 'token', message: MESSAGES[locale].register.tokenInvalid });
      const checked = await checkRegistrationMetadata(deps, metadataOf(values), undefined, locale);
      if (!checked.ok) problems.push(...checked.problems.map((problem) => placeProblem(problem, locale)));
      if (problems.length || !checked.ok) {
        show(req, res, values, problems);
        return;
      }
      // The token's use is taken only now, when nothing else stands in the way.
      if (!(await deps.tokenUses.consume(values.token))) {
        show(req, res, values, [{ field: 'token', message: MESSAGES[locale].register.tokenInvalid }]);
        return;
      }
      const registered = await deps.registration.register(checked.document, 'pending', 'self-service (web form)');
      // As oidc-provider's registration endpoint makes it (its type declares no constructor argument).
      const RegistrationAccessToken = deps.provider.RegistrationAccessToken as unknown as new (properties: { clientId: string; policies: string[] }) => { save(): Promise<string> };
      const accessToken = await new RegistrationAccessToken({ clientId: registered.sep.clientId, policies: [SEP_REGISTRATION_POLICY] }).save();
      renderPage(req, res, 'register-done', {
        title: MESSAGES[locale].register.doneTitle,
        clientId: registered.sep.clientId,
        clientSecret: registered.clientSecret,
        registrationAccessToken: accessToken,
        registrationClientUri: new URL(`/reg/${registered.sep.clientId}`, deps.publicUrl).href,
      });
    } catch (err) {
      next(err);
    }
  });

  router.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
    if (isDatabaseUnavailable(err)) {
      respondServiceUnavailable(req, res, err);
      return;
    }
    logger.error('registration form failed', { error: err.message });
    showCitizenError(req, res, 'server_error');
  });
  return router;
}
