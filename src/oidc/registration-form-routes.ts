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
import { RegistrationRejected, type SamlRegistration } from '../sep/sep-registration.ts';

/** Where a SAML SeP's SP metadata comes from in the form: pasted (or a file's text), or an https URL. */
export type SpMetadataInput = { xml: string } | { url: string };

/** The SP metadata could not be read or fetched; the message names what is wrong, for the person. */
export class SpMetadataRefused extends Error {}

export interface RegistrationFormDependencies extends RegistrationRules {
  provider: Provider;
  sepEnvironment: SepEnvironment;
  /**
   * Reads a SAML SeP's SP metadata (saml-idp/, wired by the composition root); SpMetadataRefused
   * when it cannot. Without it the form registers OIDC SePs only.
   */
  readSpMetadata?: (input: SpMetadataInput) => Promise<SamlRegistration>;
  /** Brána's SAML IdP metadata URL, shown to a SAML SeP once registered. */
  idpMetadataUrl?: string;
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
  /** `oidc` or `saml`. */
  protocol: string;
  /** SAML: the SP metadata as XML (pasted, or read from a file by the page). */
  samlMetadata: string;
  /** SAML: or the https URL it is published at. */
  samlMetadataUrl: string;
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
  protocol: 'oidc',
  samlMetadata: '',
  samlMetadataUrl: '',
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
  const text = (key: keyof FormValues, limit = 4000) => (typeof body[key] === 'string' ? (body[key] as string).slice(0, limit) : '');
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
    protocol: text('protocol') === 'saml' ? 'saml' : 'oidc',
    // One byte over the limit, so that metadata too large is refused as such, not cut.
    samlMetadata: text('samlMetadata', MAX_FORM_METADATA + 1),
    samlMetadataUrl: text('samlMetadataUrl').trim(),
  };
}

/** The largest SP metadata the form takes pasted (the body limit is a little above it). */
const MAX_FORM_METADATA = 256 * 1024;

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
  const form = express.urlencoded({ extended: false, limit: '400kb', parameterLimit: 40 });

  /** The SAML SeP's SP metadata from the form, or the problem placed at its field. */
  const samlOf = async (values: FormValues, locale: Locale, problems: Array<{ field: string; message: string }>): Promise<SamlRegistration | undefined> => {
    const r = MESSAGES[locale].register;
    if (values.redirectUris.trim() || values.postLogoutRedirectUris.trim()) problems.push({ field: 'redirectUris', message: r.samlNoRedirectUris });
    if (!deps.readSpMetadata) {
      problems.push({ field: 'samlMetadata', message: r.samlUnavailable });
      return undefined;
    }
    const pasted = values.samlMetadata.trim();
    if (Boolean(pasted) === Boolean(values.samlMetadataUrl)) {
      problems.push({ field: 'samlMetadata', message: r.samlMetadataOne });
      return undefined;
    }
    if (pasted.length > MAX_FORM_METADATA) {
      problems.push({ field: 'samlMetadata', message: r.samlMetadataTooLarge });
      return undefined;
    }
    try {
      const saml = await deps.readSpMetadata(pasted ? { xml: pasted } : { url: values.samlMetadataUrl });
      return problems.length ? undefined : saml;
    } catch (err) {
      if (!(err instanceof SpMetadataRefused)) throw err;
      problems.push({ field: pasted ? 'samlMetadata' : 'samlMetadataUrl', message: err.message });
      return undefined;
    }
  };

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
        samlOffered: deps.readSpMetadata !== undefined,
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
      const saml = values.protocol === 'saml' ? await samlOf(values, locale, problems) : undefined;
      if (values.protocol === 'saml' && !saml) {
        show(req, res, values, problems);
        return;
      }
      // A SAML SeP's return URLs are the ACS endpoints of its metadata, as with the CLI.
      const metadata = saml ? { ...metadataOf(values), redirect_uris: saml.serviceProvider.assertionConsumerServices.map((service) => service.url), post_logout_redirect_uris: [] } : metadataOf(values);
      const checked = await checkRegistrationMetadata(deps, metadata, undefined, locale);
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
      let registered;
      try {
        registered = await deps.registration.register(checked.document, 'pending', 'self-service (web form)', saml ? { saml } : {});
      } catch (err) {
        // The entity ID of another SeP: known only when written (the one unique key).
        if (!(err instanceof RegistrationRejected)) throw err;
        show(req, res, values, err.problems.map((problem) => ({ field: 'samlMetadata', message: problem })));
        return;
      }
      if (saml) {
        renderPage(req, res, 'register-done', {
          title: MESSAGES[locale].register.doneTitle,
          saml: true,
          clientId: registered.sep.clientId,
          entityId: saml.serviceProvider.entityId,
          idpMetadataUrl: deps.idpMetadataUrl,
        });
        return;
      }
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
