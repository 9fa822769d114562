// The Alma user v2 object as the SIS load takes it, with Alma's own field names, so that the
// mapping file, this code and the XML speak one vocabulary. Output-only fields and fields the SIS
// load ignores (full_name, account_type, external_id, password, roles, loans, fees, requests) are
// deliberately absent: a user of this type cannot carry them into the file.

export interface AlmaUser {
  primary_id: string;
  first_name?: string;
  middle_name?: string;
  last_name?: string;
  pin_number?: string;
  user_title?: string;
  job_category?: string;
  job_description?: string;
  gender?: string;
  user_group?: string;
  campus_code?: string;
  web_site_url?: string;
  cataloger_level?: string;
  preferred_language?: string;
  birth_date?: string;
  expiry_date?: string;
  purge_date?: string;
  status?: string;
  contact_info: ContactInfo;
  user_identifiers: UserIdentifier[];
  /** Optional lists (absent in most users): a mapping that has none never makes them. */
  user_blocks?: UserBlock[];
  user_notes: UserNote[];
  user_statistics: UserStatistic[];
  /** Codes of the user's resource sharing libraries. */
  rs_libraries?: string[];
  library_notices?: LibraryNotice[];
  pref_first_name?: string;
  pref_middle_name?: string;
  pref_last_name?: string;
  pref_name_suffix?: string;
}

export interface ContactInfo {
  addresses: Address[];
  emails: Email[];
  phones: Phone[];
}

export interface Address {
  preferred: boolean;
  line1?: string;
  line2?: string;
  line3?: string;
  line4?: string;
  line5?: string;
  city?: string;
  state_province?: string;
  postal_code?: string;
  country?: string;
  address_note?: string;
  start_date?: string;
  end_date?: string;
  address_types: string[];
}

export interface Email {
  preferred: boolean;
  email_address: string;
  description?: string;
  email_types: string[];
}

export interface Phone {
  preferred: boolean;
  preferred_sms?: boolean;
  phone_number: string;
  phone_types: string[];
}

export interface UserIdentifier {
  id_type: string;
  value: string;
  note?: string;
  status?: string;
}

export interface UserBlock {
  block_type?: string;
  block_description: string;
  block_status?: string;
  block_note?: string;
}

export interface LibraryNotice {
  code: string;
  value: boolean;
}

export interface UserNote {
  note_type: string;
  note_text: string;
  user_viewable: boolean;
  popup_note: boolean;
}

export interface UserStatistic {
  statistic_category: string;
  category_type?: string;
  statistic_note?: string;
}

/**
 * Alma's length limits (from the documented rest_user structure): most text is 255 characters,
 * campus_code 50, address_note 1000, notes and statistic notes 2000. line1 is unbounded in the
 * schema; we hold it to 255 like the other lines, since Alma's UI shows no more.
 */
export const MAX_LENGTH: Readonly<Record<string, number>> = {
  campus_code: 50,
  address_note: 1000,
  note_text: 2000,
  statistic_note: 2000,
  block_note: 2000,
  note: 2000,
  rs_library: 50,
};
export const DEFAULT_MAX_LENGTH = 255;

export function maxLengthOf(field: string): number {
  return MAX_LENGTH[field] ?? DEFAULT_MAX_LENGTH;
}

export function emptyUser(primary_id: string): AlmaUser {
  return {
    primary_id,
    contact_info: { addresses: [], emails: [], phones: [] },
    user_identifiers: [],
    user_notes: [],
    user_statistics: [],
  };
}
