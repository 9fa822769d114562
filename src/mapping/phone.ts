// Phone numbers through libphonenumber (Google's rules, as libphonenumber-js carries them), with
// its smallest metadata: it tells numbers by their country's lengths and prefixes, which is what
// a phone field needs. Loaded on first use, as only mappings with `phone:` need it: loading takes
// 50-90 ms, which every other command would otherwise pay at start.
import { createRequire } from 'node:module';
import type { CountryCode } from 'libphonenumber-js/min';
import type { PhoneFormat } from './model.js';

type PhoneLibrary = typeof import('libphonenumber-js/min');

let library: PhoneLibrary | undefined;
function phoneLibrary(): PhoneLibrary {
  return (library ??= createRequire(import.meta.url)('libphonenumber-js/min') as PhoneLibrary);
}

/** The region codes libphonenumber knows (ISO 3166 alpha-2: US, GB, DE, ...). */
export function phoneRegions(): string[] {
  return phoneLibrary().getCountries();
}

const FORMATS = { e164: 'E.164', national: 'NATIONAL', international: 'INTERNATIONAL' } as const;

/** The number in the mapping's form; undefined when the text is not a valid phone number of the region (or another, with its +code). */
export function formatPhone(text: string, spec: PhoneFormat): string | undefined {
  try {
    const number = phoneLibrary().parsePhoneNumberFromString(text, spec.region as CountryCode);
    return number?.isValid() ? number.format(FORMATS[spec.format]) : undefined;
  } catch {
    // The library returns undefined for what it cannot read; this only guards a row against a surprise.
    return undefined;
  }
}
