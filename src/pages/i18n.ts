/**
 * Citizen-facing text in Czech (the default) and English. Keys are grouped by page; every key exists
 * in both languages (the type makes a missing translation a compile error).
 */
export const LOCALES = ['cs', 'en'] as const;
export type Locale = (typeof LOCALES)[number];

const cs = {
  common: {
    siteName: 'Brána',
    siteTagline: 'Přihlášení k online službám veřejné správy',
    switchLanguage: 'English',
    switchLanguageCode: 'en',
    skipToContent: 'Přeskočit na obsah',
    footer: 'Brána ověřuje vaši totožnost pro služby veřejné správy. Údaje předává jen s vaším souhlasem.',
    loa: { low: 'nízká úroveň záruky', substantial: 'značná úroveň záruky', high: 'vysoká úroveň záruky' },
    continue: 'Pokračovat',
    backToService: 'Zpět do služby',
  },
  selection: {
    title: 'Výběr prostředku pro přihlášení',
    heading: (sep: string) => `Přihlášení do služby ${sep}`,
    intro: 'Vyberte, čím prokážete svou totožnost. Nabízíme jen prostředky, které služba přijímá.',
    requiredLoa: (loa: string) => `Služba vyžaduje alespoň ${loa}.`,
    administeredBy: (who: string) => `Spravuje: ${who}`,
    none: 'Pro tuto službu není dostupný žádný prostředek pro přihlášení. Obraťte se prosím na provozovatele služby.',
    cancel: 'Zrušit přihlášení',
    unavailable: (names: string) => `Dočasně nedostupné: ${names}. Zkuste prosím jiný prostředek, nebo to zkuste později.`,
  },
  consent: {
    title: 'Souhlas s předáním údajů',
    heading: 'Souhlas s předáním údajů',
    requester: (sep: string, organisation: string, ico: string) => `Služba ${sep} (${organisation}, IČO ${ico}) žádá o tyto údaje o vás:`,
    always: 'Vždy předáváme váš identifikátor pro tuto službu (pseudonym), podle kterého vás služba pozná příště.',
    onlyPseudonym: 'Služba nežádá žádné další údaje.',
    permanent: 'Zapamatovat souhlas (trvalý souhlas)',
    permanentHelp: 'Příště vám tato služba tytéž údaje dostane bez ptaní. Trvalý souhlas platí jen pro přesně tento seznam údajů a můžete ho kdykoli odvolat v části Můj účet.',
    agree: 'Souhlasím a pokračovat',
    refuse: 'Nesouhlasím',
    refuseHelp: 'Když nesouhlasíte, služba žádné údaje nedostane a přihlášení se nedokončí.',
  },
  error: {
    title: 'Přihlášení se nezdařilo',
    whatNext: 'Co můžete udělat',
    tryOther: 'Přihlásit se jiným prostředkem',
    tryAgain: (means: string) => `Zkusit znovu: ${means}`,
    giveUp: 'Zrušit přihlášení a vrátit se do služby',
    startAgain: 'Vraťte se do služby, ze které jste přišli, a začněte přihlášení znovu.',
    reference: (id: string) => `Kód události pro helpdesk: ${id}`,
    codes: {
      invalid_response: 'Odpověď od poskytovatele identity se nepodařilo ověřit, proto jsme ji nepřijali.',
      authn_failed: 'Poskytovatel identity vás nepřihlásil.',
      cancelled: 'Přihlášení u poskytovatele identity bylo zrušeno.',
      loa_too_low: 'Zvolený prostředek nedosáhl úrovně záruky, kterou služba vyžaduje.',
      unknown_request: 'Tomuto přihlášení už vypršela platnost, nebo nepatří k tomuto prohlížeči.',
      not_identified: 'Podle údajů od poskytovatele identity jsme vás nedokázali jednoznačně najít v registru obyvatel.',
      session_expired: 'Přihlášení trvalo příliš dlouho nebo bylo otevřeno v jiném prohlížeči.',
      means_unavailable: 'Zvolený prostředek teď není k dispozici.',
      means_unreachable: 'Poskytovatel identity neodpověděl včas nebo není dostupný.',
      bad_request: 'Požadavek nebyl platný.',
      not_found: 'Stránka neexistuje.',
      server_error: 'Na naší straně nastala chyba. Zkuste to prosím znovu za chvíli.',
      too_many_requests: 'Příliš mnoho požadavků. Zkuste to prosím za chvíli.',
      service_unavailable: 'Brána je teď dočasně nedostupná. Zkuste to prosím za chvíli znovu: obnovte tuto stránku, nebo začněte přihlášení znovu ve službě.',
    },
  },
  stats: {
    title: 'Statistiky přihlášení',
    period: (from: string, weeks: number) => `Období: ${weeks} týdnů od ${from} (týdny od pondělí, čas Europe/Prague).`,
    json: 'Stejná data jako JSON',
    invalidPeriod: 'Období nebylo zadáno správně:',
    loginsPerWeek: 'Přihlášení za týden podle prostředku',
    registrations: 'Nárůst registrací',
    registrationsHelp: 'Osoby, které Brána ztotožnila poprvé, souhrnně ke konci každého týdne.',
    loginsBySep: 'Přihlášení podle služby',
    failuresByReason: 'Neúspěšná přihlášení podle důvodu',
    dataTable: 'Data v tabulce',
    week: 'Týden',
    logins: 'přihlášení',
    newRegistrations: 'nových registrací',
    registeredPersons: 'registrovaných osob celkem',
    failures: 'neúspěšných přihlášení',
    service: 'Služba',
    reason: 'Důvod',
    count: 'Počet',
    none: 'Za toto období nejsou žádná data.',
  },
  logout: {
    title: 'Odhlášení',
    question: 'Chcete se odhlásit z Brány?',
    explanation: 'Odhlášením ukončíte přihlášení k Bráně v tomto prohlížeči.',
    yes: 'Ano, odhlásit',
    no: 'Ne, zůstat přihlášen',
    done: 'Byli jste odhlášeni.',
  },
} as const;

type Widen<T> = T extends (...args: infer A) => infer R ? (...args: A) => R : T extends string ? string : { [K in keyof T]: Widen<T[K]> };
export type Messages = Widen<typeof cs>;

const en: Messages = {
  common: {
    siteName: 'Brána',
    siteTagline: 'Log in to public online services',
    switchLanguage: 'Česky',
    switchLanguageCode: 'cs',
    skipToContent: 'Skip to content',
    footer: 'Brána verifies your identity for public services. It releases your data only with your consent.',
    loa: { low: 'low level of assurance', substantial: 'substantial level of assurance', high: 'high level of assurance' },
    continue: 'Continue',
    backToService: 'Back to the service',
  },
  selection: {
    title: 'Choose how to log in',
    heading: (sep) => `Log in to ${sep}`,
    intro: 'Choose how you will prove who you are. Only the means this service accepts are offered.',
    requiredLoa: (loa) => `The service requires at least a ${loa}.`,
    administeredBy: (who) => `Run by: ${who}`,
    none: 'No means of logging in is available for this service. Please contact the service operator.',
    cancel: 'Cancel the login',
    unavailable: (names) => `Temporarily unavailable: ${names}. Please use another means, or try again later.`,
  },
  consent: {
    title: 'Consent to release your data',
    heading: 'Consent to release your data',
    requester: (sep, organisation, ico) => `The service ${sep} (${organisation}, company ID ${ico}) asks for this data about you:`,
    always: 'We always release your identifier for this service (a pseudonym), by which the service recognises you next time.',
    onlyPseudonym: 'The service asks for no other data.',
    permanent: 'Remember this consent (permanent consent)',
    permanentHelp: 'Next time this service gets the same data without asking. A permanent consent covers exactly this list of data and you can revoke it at any time in My account.',
    agree: 'I agree, continue',
    refuse: 'I do not agree',
    refuseHelp: 'If you do not agree, the service receives no data and the login does not complete.',
  },
  error: {
    title: 'The login did not succeed',
    whatNext: 'What you can do',
    tryOther: 'Log in with another means',
    tryAgain: (means) => `Try again: ${means}`,
    giveUp: 'Cancel the login and return to the service',
    startAgain: 'Return to the service you came from and start the login again.',
    reference: (id) => `Event code for the helpdesk: ${id}`,
    codes: {
      invalid_response: 'The answer from the identity provider could not be verified, so we did not accept it.',
      authn_failed: 'The identity provider did not log you in.',
      cancelled: 'The login at the identity provider was cancelled.',
      loa_too_low: 'The chosen means did not reach the level of assurance the service requires.',
      unknown_request: 'This login has expired or does not belong to this browser.',
      not_identified: 'We could not find you unambiguously in the population register from the data the identity provider gave.',
      session_expired: 'The login took too long or was opened in another browser.',
      means_unavailable: 'The chosen means is not available right now.',
      means_unreachable: 'The identity provider did not answer in time or cannot be reached.',
      bad_request: 'The request was not valid.',
      not_found: 'This page does not exist.',
      server_error: 'Something went wrong on our side. Please try again in a moment.',
      too_many_requests: 'Too many requests. Please try again in a moment.',
      service_unavailable: 'Brána is temporarily unavailable. Please try again in a moment: reload this page, or start the login again at the service.',
    },
  },
  stats: {
    title: 'Login statistics',
    period: (from, weeks) => `Period: ${weeks} weeks from ${from} (weeks from Monday, Europe/Prague time).`,
    json: 'The same data as JSON',
    invalidPeriod: 'The period was not given correctly:',
    loginsPerWeek: 'Logins per week by means',
    registrations: 'Growth of registrations',
    registrationsHelp: 'People Brána identified for the first time, in total at the end of each week.',
    loginsBySep: 'Logins per service',
    failuresByReason: 'Failed logins by reason',
    dataTable: 'Data as a table',
    week: 'Week',
    logins: 'logins',
    newRegistrations: 'new registrations',
    registeredPersons: 'registered people in total',
    failures: 'failed logins',
    service: 'Service',
    reason: 'Reason',
    count: 'Count',
    none: 'There is no data for this period.',
  },
  logout: {
    title: 'Log out',
    question: 'Do you want to log out of Brána?',
    explanation: 'Logging out ends your Brána login in this browser.',
    yes: 'Yes, log out',
    no: 'No, stay logged in',
    done: 'You have been logged out.',
  },
};

export const MESSAGES: Record<Locale, Messages> = { cs, en };
export type ErrorCode = keyof Messages['error']['codes'];

export function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value);
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(cs.error.codes, value);
}
