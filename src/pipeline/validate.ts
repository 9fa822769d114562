// Checks Alma user XML against an XSD with libxml2 (through libxmljs2), and says which <user> each
// problem is in, so that the pipeline can reject that user and `sis2alma validate` can tell the
// operator where to look.
//
// Two things about libxml2 shape this module:
//  - libxmljs2 compiles the XSD anew on every Document.validate() call (xmlSchemaParse, then
//    xmlSchemaFree, in xml_document.cc) and offers no way to keep the compiled schema. What we can
//    keep is the parsed XSD document, with its xs:include files already merged in, so that each
//    compile is done from memory and reads no file. (Measured figures: README, "The project's schema".)
//  - When an element is "not expected" by its parent's content model, libxml2 stops checking the
//    rest of that parent, so one stray element hides every later problem in the same user. We
//    remove the stray elements and validate again until no new ones appear, so that the operator
//    gets every problem in one run rather than one per user per run.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import libxml from 'libxmljs2';
import type { Document as XmlDocument, Element as XmlElement } from 'libxmljs2';
import { RunError } from '../shared/errors.js';
import { PROJECT_XSD } from '../shared/paths.js';

export interface XmlProblem {
  line: number;
  column?: number;
  message: string;
  /** The offending value, where libxml2 quotes it in the message (a date, a boolean, a code): the CLI masks it. */
  value?: string;
  /** Index (0-based, in document order) of the <user> holding the problem; absent when it is outside any user or cannot be told. */
  userIndex?: number;
  /** primary_id of that user, when it has one. */
  primary_id?: string;
}

/** One <user> of a checked document: where it starts and who it is. */
export interface UserLocation {
  line: number;
  primary_id?: string;
}

export interface ValidationReport {
  /** False when the text is not well-formed XML; then `problems` holds the parser's error and `users` is empty. */
  wellFormed: boolean;
  /** Name of the root element, when there is one. */
  root?: string;
  users: UserLocation[];
  problems: XmlProblem[];
}

const XS_NAMESPACE = 'http://www.w3.org/2001/XMLSchema';
// libxml2 error codes (xmlerror.h) this module acts on.
const XML_SCHEMAV_ELEMENT_CONTENT = 1871;
const XML_SCHEMAV_CVC_ELT_1 = 1845; // no global declaration for the root
// Each pass removes at least one stray element from every parent that had one, so the number of
// passes is the largest number of stray elements under one parent; real files need a handful.
const MAX_PASSES = 64;

const PARSE_OPTIONS = { big_lines: true, nonet: true } as const;

/** Elements that Alma's full user object has but our schema leaves out, with why (see schemas/alma_users.xsd). */
const LEFT_OUT: Readonly<Record<string, string>> = {
  record_type: 'Alma sets it; the SIS load ignores it',
  full_name: 'it is output only in Alma (made from the name fields)',
  account_type: 'Alma sets EXTERNAL for SIS users itself',
  external_id: 'Alma sets it to the SIS profile itself',
  password: 'it is for internal users only, not the SIS load',
  force_password_change: 'it is for internal users only, not the SIS load',
  status_date: 'it is output only in Alma',
  last_patron_activity_date: 'it is output only in Alma',
  requests: 'it is output only in Alma',
  loans: 'it is output only in Alma',
  fees: 'it is output only in Alma',
  user_roles: 'the SIS load does not take roles (Alma assigns them by rules)',
  proxy_for_users: 'it is output only in Alma',
  source_link_id: 'it is output only in Alma',
  source_institution_code: 'it is output only in Alma',
  linking_id: 'it is output only in Alma',
  is_researcher: 'sis2alma does not load researcher data',
  researcher: 'it is for Esploro only, with a schema of its own (rest_researcher.xsd)',
};

export class AlmaSchema {
  readonly path: string;
  private readonly xsd: XmlDocument;
  /** Whether the schema declares a global <users>, so that a file with another root can still have its users checked. */
  private readonly declaresUsers: boolean;

  private constructor(xsdPath: string, xsd: XmlDocument) {
    this.path = xsdPath;
    this.xsd = xsd;
    this.declaresUsers = xsd.find(`/xs:schema/xs:element[@name='users']`, { xs: XS_NAMESPACE }).length > 0;
  }

  /**
   * Loads an XSD (default: the project's schemas/alma_users.xsd). Its xs:include files are
   * resolved relative to the file that includes them and merged in. A missing or broken XSD is
   * RunError('schema_invalid') naming the file.
   */
  static load(xsdPath: string = PROJECT_XSD): AlmaSchema {
    const absolute = path.resolve(xsdPath);
    const xsd = readSchemaDocument(absolute, xsdPath);
    mergeIncludes(xsd, absolute, new Set([absolute]));
    const schema = new AlmaSchema(xsdPath, xsd);
    schema.compileOrThrow();
    return schema;
  }

  /** Validates one XML document (text, or bytes whose encoding libxml2 detects). [] means valid. */
  validate(xml: string | Buffer): XmlProblem[] {
    return this.check(xml).problems;
  }

  /**
   * The fast path for the pipeline: parses and validates, and says only whether the document is
   * valid; `check` finds out which users are at fault, only when this says one is.
   */
  isValid(xml: string | Buffer): boolean {
    try {
      return validateQuietly(libxml.parseXml(xml as string, PARSE_OPTIONS), this.xsd);
    } catch {
      return false;
    }
  }

  /** Validates one XML document and tells which <user> each problem is in. */
  check(xml: string | Buffer): ValidationReport {
    let doc: XmlDocument;
    try {
      doc = libxml.parseXml(xml as string, PARSE_OPTIONS);
    } catch (error) {
      return { wellFormed: false, users: [], problems: [firstSyntaxProblem(xml, error)] };
    }
    const problems: XmlProblem[] = doc.errors
      .filter((e) => (e.level ?? 0) >= 2)
      .map((e) => ({ line: e.line ?? 0, ...(e.column ? { column: e.column } : {}), message: cleanMessage(e.message) }));
    const root = doc.root()!;
    const rootName = root.name();
    const rootLine = root.line();
    // One XPath for all users and one for all their primary ids: a get() per user costs more
    // than the validation itself on a batch of a thousand.
    // Stryker disable next-line ConditionalExpression,StringLiteral: for a <user> root the locator answers before it reads the children, so which children it got changes nothing
    const children = rootName === 'user' ? [] : root.find<XmlElement>('*');
    const userElements = rootName === 'user' ? [root] : root.find<XmlElement>('user');
    // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: the wrong path finds no ids, the counts differ and each user's id is read on its own: only slower
    const ids = root.find<XmlElement>(rootName === 'user' ? 'primary_id' : 'user/primary_id');
    // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator,StringLiteral: not aligned only costs a get per user; aligned needs each user to have one primary_id (or a <user> root, whose first id both ways find), so the counts already agree
    const aligned = ids.length === userElements.length && (rootName === 'user' || root.find('user[count(primary_id) != 1]').length === 0);
    const users: UserLocation[] = userElements.map((u, i) => {
      const text = (aligned ? ids[i] : u.get<XmlElement>('primary_id'))?.text().trim();
      return { line: u.line(), ...(text ? { primary_id: text } : {}) };
    });
    const locate = userLocator(rootName, rootLine, children, users);

    const seen = new Set<string>();
    let renamedRoot = false;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      if (validateQuietly(doc, this.xsd)) break;
      const errors = doc.validationErrors;
      for (const e of errors) {
        // Later passes report again what earlier ones did.
        const key = `${e.line}\u0000${e.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        let message = cleanMessage(e.message);
        if (e.code === XML_SCHEMAV_CVC_ELT_1) {
          if (this.declaresUsers) message += ' (the root element of an Alma users file is <users>)';
          else if (rootName === 'users') message += " (this schema declares no <users>: with Ex Libris' files, use rest_users.xsd, which includes rest_user.xsd)";
        }
        const value = quotedValue(message);
        // Stryker disable next-line ObjectLiteral: libxml2's schema-validity errors carry no column (0), so this object is never spread
        problems.push({ line: e.line ?? 0, ...(e.column ? { column: e.column } : {}), message, ...(value !== undefined ? { value } : {}), ...locate(e.line ?? 0, message) });
      }
      // A file whose root is not <users> (MIT writes <userRecords>): the root problem is
      // reported above; checking its users as if the root were right tells the rest.
      // Stryker disable next-line ConditionalExpression,StringLiteral,MethodExpression: with <users> declared only another root is undeclared, libxml2 reports nothing else on an undeclared root, and renamed it is declared (no second rename)
      if (!renamedRoot && this.declaresUsers && rootName !== 'users' && rootName !== 'user' && errors.some((e) => e.code === XML_SCHEMAV_CVC_ELT_1)) {
        // Stryker disable next-line BooleanLiteral: once renamed the root is <users>, which the schema declares: no later pass reports CVC_ELT_1 to rename it again
        renamedRoot = true;
        root.name('users');
        for (const attribute of root.attrs()) attribute.remove();
        continue;
      }
      if (!removeStrayElements(doc, errors)) break;
    }
    problems.sort((a, b) => a.line - b.line);
    return { wellFormed: true, root: rootName, users, problems };
  }

  /** libxmljs2 only says "Invalid XSD schema" when libxml2 cannot compile it; this makes that a RunError at load time. */
  private compileOrThrow(): void {
    const probe = libxml.parseXml('<sis2alma-probe/>');
    try {
      probe.validate(this.xsd);
    } catch (error) {
      // libxmljs2 leaves libxml2's error handler pointing at a released array when compiling
      // fails; a parse sets and clears it again before anything else can report an error.
      libxml.parseXml('<reset/>');
      const detail = error instanceof Error ? error.message : String(error);
      throw new RunError('schema_invalid', `${this.path} is not a usable XML Schema: libxml2 cannot compile it (${detail}); check its types, references and xs:include files`, { file: this.path });
    }
  }
}

/**
 * libxmljs2 makes each libxml2 message a JavaScript Error, which captures a stack trace nobody
 * reads; on a foreign file with thousands of problems that capture costs more than the check.
 */
function validateQuietly(doc: XmlDocument, xsd: XmlDocument): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return doc.validate(xsd);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function readSchemaDocument(absolute: string, shown: string): XmlDocument {
  // Bytes, not text: libxml2 reads the encoding the schema declares (an ISO-8859-1 XSD's é stays é).
  let text: Buffer;
  try {
    text = readFileSync(absolute);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new RunError('schema_invalid', `cannot read the XML Schema ${shown}: ${reason}`, { file: shown });
  }
  let doc: XmlDocument;
  try {
    // baseUrl makes libxml2 resolve whatever include we leave in place relative to this file.
    // Stryker disable next-line BooleanLiteral: libxml2 loads no external DTD or entity of an XSD without DTDLOAD/NOENT, and no test machine has a network: nonet is a second lock
    doc = libxml.parseXml(text as unknown as string, { baseUrl: absolute, nonet: true });
  } catch (error) {
    const p = firstSyntaxProblem(text, error);
    throw new RunError('schema_invalid', `the XML Schema ${shown} is not well-formed XML: line ${p.line}: ${p.message}`, { file: shown });
  }
  const root = doc.root()!;
  if (root.name() !== 'schema' || root.namespace()?.href() !== XS_NAMESPACE) {
    throw new RunError('schema_invalid', `${shown} is not an XML Schema: its root element is <${root.name()}>, not <xs:schema>`, { file: shown });
  }
  return doc;
}

/**
 * Replaces each xs:include by the top-level declarations of the included file, recursively, so
 * that compiling reads no file. An include whose file has another target namespace or other
 * defaults is left for libxml2 to resolve (merging it would change its meaning); it is still
 * checked here, so that a missing file is reported by name instead of libxml2's bare "Invalid
 * XSD schema".
 */
function mergeIncludes(doc: XmlDocument, absolute: string, visited: Set<string>): void {
  const ns = { xs: XS_NAMESPACE };
  const root = doc.root()!;
  for (const include of doc.find<XmlElement>('/xs:schema/xs:include | /xs:schema/xs:import | /xs:schema/xs:redefine', ns)) {
    const location = include.attr('schemaLocation')?.value();
    if (!location) continue;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
      throw new RunError('schema_invalid', `${absolute} refers to ${location}: sis2alma reads no schema from the network; download it next to ${path.basename(absolute)} and refer to it by file name`, { file: absolute });
    }
    const target = path.resolve(path.dirname(absolute), location);
    let included: XmlDocument;
    try {
      included = readSchemaDocument(target, target);
    } catch (error) {
      // Stryker disable next-line ConditionalExpression: readSchemaDocument throws RunError only (it catches the file system's and the parser's errors)
      if (error instanceof RunError) throw new RunError('schema_invalid', `${error.message} (included by ${absolute})`, { file: absolute });
      throw error;
    }
    if (include.name() !== 'include') continue;
    if (visited.has(target)) {
      include.remove();
      continue;
    }
    visited.add(target);
    mergeIncludes(included, target, visited);
    const iroot = included.root()!;
    const sameContext = ['targetNamespace', 'elementFormDefault', 'attributeFormDefault', 'blockDefault', 'finalDefault'].every(
      (name) => (iroot.attr(name)?.value() ?? defaultOf(name)) === (root.attr(name)?.value() ?? defaultOf(name)),
    );
    if (!sameContext) continue;
    // XSD wants includes and imports before any declaration; declarations may come in any order.
    for (const child of iroot.childNodes()) {
      // Stryker disable next-line ConditionalExpression: text and comments moved to the end of the schema mean nothing to XSD
      if (child.type() !== 'element') continue;
      const name = (child as XmlElement).name();
      // Stryker disable next-line ConditionalExpression,StringLiteral: an xs:annotation may stand anywhere among a schema's top-level elements, so moving it to the end changes nothing
      if (name === 'annotation') continue;
      if (name === 'include' || name === 'import' || name === 'redefine') {
        // Left in place (another namespace): it must still be found from the included file's folder.
        const loc = (child as XmlElement).attr('schemaLocation');
        if (loc) loc.value(path.resolve(path.dirname(target), loc.value()));
        include.addPrevSibling(child);
      } else {
        root.addChild(child);
      }
    }
    include.remove();
  }
}

function defaultOf(attribute: string): string {
  // Stryker disable next-line ConditionalExpression,StringLiteral: a default for targetNamespace, blockDefault or finalDefault is compared with the same default on the other side; only a file that wrote that very text (no valid block or final value is 'unqualified') could tell
  return attribute === 'elementFormDefault' || attribute === 'attributeFormDefault' ? 'unqualified' : '';
}

/** Removes the elements libxml2 called "not expected", so that the next pass checks what they hid. Returns whether it removed any. */
function removeStrayElements(doc: XmlDocument, errors: ReadonlyArray<{ code: number | null; message: string; line: number | null }>): boolean {
  // name -> line -> how many errors; for a repeated element only the later copies are strays.
  const strays = new Map<string, Map<number, number>>();
  for (const e of errors) {
    // Stryker disable next-line ConditionalExpression: only libxml2's error 1871 (element content) says 'This element is not expected'
    if (e.code !== XML_SCHEMAV_ELEMENT_CONTENT || !e.message.includes('This element is not expected')) continue;
    // Stryker disable next-line Regex: libxml2's element-content messages start with Element '…': the first match is at the start either way
    const name = /^Element '([A-Za-z_][\w.-]*)'/.exec(e.message)?.[1];
    // Stryker disable next-line ConditionalExpression,LogicalOperator: a stray without a plain name or line keys a Map entry (undefined, null) that no element's name() or line() matches, so nothing more is removed
    if (!name || e.line === null) continue;
    const lines = strays.get(name) ?? new Map<number, number>();
    lines.set(e.line, (lines.get(e.line) ?? 0) + 1);
    strays.set(name, lines);
  }
  // Stryker disable next-line BooleanLiteral: a pass that removes nothing repeats the last pass's errors, all seen already: only time is lost (at most 64 passes)
  if (strays.size === 0) return false;
  // One scan of the document for all stray names (names are checked to be plain XML names above).
  const candidates = doc.find<XmlElement>(`//*[${[...strays.keys()].map((n) => `name()='${n}'`).join(' or ')}]`);
  const byNameAndLine = new Map<string, XmlElement[]>();
  for (const c of candidates) {
    const line = c.line();
    const name = c.name();
    // Stryker disable next-line ConditionalExpression,OptionalChaining: the elements are found by the strays' names, so each name has an entry; one on another line is gathered but never removed
    if (!strays.get(name)?.has(line)) continue;
    const key = `${name}\u0000${line}`;
    // Stryker disable next-line ArrayDeclaration: an extra first item is never among the last `count` (libxml2 reports a stray no more often than it occurs)
    byNameAndLine.set(key, [...(byNameAndLine.get(key) ?? []), c]);
  }
  let removed = 0;
  for (const [name, lines] of strays) {
    for (const [line, count] of lines) {
      // Stryker disable next-line ArrayDeclaration: libxml2 names a stray's line from the element itself, so every counted name and line has its elements; the fallback is never taken
      for (const element of (byNameAndLine.get(`${name}\u0000${line}`) ?? []).slice(-count)) {
        element.remove();
        removed++;
      }
    }
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a pass that removes nothing repeats the last pass's errors, all seen already: only time is lost (at most 64 passes)
  return removed > 0;
}

/**
 * Which user a problem at `line` is in: the last child of the root starting at or before that
 * line, if it is a <user>. libxml2 reports lines only, so when several users start on one line
 * (a file written without line breaks) the user cannot be told.
 */
function userLocator(rootName: string, rootLine: number, children: XmlElement[], users: UserLocation[]) {
  const starts = children.map((c) => ({ line: c.line(), user: c.name() === 'user' }));
  const userIndexOfChild: number[] = [];
  let u = 0;
  for (const s of starts) userIndexOfChild.push(s.user ? u++ : -1);
  return (line: number, message: string): { userIndex?: number; primary_id?: string } => {
    // Stryker disable next-line OptionalChaining: a <user> root is the one user: users[0] is always there
    if (rootName === 'user') return users[0]?.primary_id ? { userIndex: 0, primary_id: users[0].primary_id } : { userIndex: 0 };
    if (line === rootLine && message.startsWith(`Element '${rootName}'`)) return {};
    let hi = -1;
    let lo = 0;
    let high = starts.length - 1;
    while (lo <= high) {
      const mid = (lo + high) >> 1;
      if (starts[mid]!.line <= line) {
        hi = mid;
        lo = mid + 1;
      } else high = mid - 1;
    }
    if (hi < 0) return {};
    const startLine = starts[hi]!.line;
    if (hi > 0 && starts[hi - 1]!.line === startLine) return {};
    const index = userIndexOfChild[hi]!;
    if (index < 0) return {};
    const id = users[index]!.primary_id;
    return id ? { userIndex: index, primary_id: id } : { userIndex: index };
  };
}

/**
 * libxmljs2 throws the parser's last error, which for a broken file is often a consequence
 * ("Premature end of data") far from the cause; parsing again in recovery mode lists them all,
 * and the first is the one to fix.
 */
function firstSyntaxProblem(xml: string | Buffer, thrown: unknown): XmlProblem {
  if (xml.length === 0) return { line: 1, message: 'Document is empty' };
  try {
    // Stryker disable next-line ConditionalExpression: libxml2 gives every fatal parser error a line (1 at least; an empty document is answered above)
    const first = libxml.parseXml(xml as string, { ...PARSE_OPTIONS, recover: true }).errors.find((e) => (e.level ?? 0) >= 3 && e.line);
    // Stryker disable next-line ConditionalExpression: syntaxProblem(undefined) throws inside this try, whose catch then does what the else does
    if (first) return syntaxProblem(first);
  } catch {
    /* nothing to recover (no root element at all): the thrown error says why */
  }
  return syntaxProblem(thrown);
}

function syntaxProblem(error: unknown): XmlProblem {
  const e = error as { line?: number | null; column?: number; message?: string };
  const message = cleanMessage(e.message ?? String(error));
  // Stryker disable next-line StringLiteral: libxml2's errors always say something; an empty message would need a thrown error without one
  return { line: e.line ?? 1, ...(e.column ? { column: e.column } : {}), message: message || 'not well-formed XML' };
}

/** libxml2's message, made readable: one line, no trailing newline, no "[facet 'x']" jargon, with a hint where we know why. */
export function cleanMessage(raw: string): string {
  let message = raw.replace(/\s+/g, ' ').trim();
  message = message.replace(/\[facet '\w+'\] /, '');
  message = message.replace(/The value has a length of '0'; this underruns the allowed minimum length of '1'\./, 'The value is empty; leave the element out instead of writing it empty.');
  message = message.replace(/^(Element '[^']+'(?:, attribute '[^']+')?): '' is not a valid value of the atomic type '([^']+)'\./, "$1: The value is empty, which is not a valid $2; leave it out instead of writing it empty.");
  if (message.includes('there is at least one entity reference in the node-tree')) {
    return 'The file uses an entity declared in its DOCTYPE (&name;); entities are not expanded (so that no outside file is read): write the text itself';
  }
  message = message.replace(/^xmlParseEntityRef: no name$/, "A '&' that starts no entity: write it as &amp;");
  const stray = /^Element '([\w.-]+)': This element is not expected\./.exec(message);
  // Own keys only: an element named toString or constructor is not one of Alma's output-only fields.
  if (stray && Object.hasOwn(LEFT_OUT, stray[1]!)) message += ` (not in an Alma SIS load file: ${LEFT_OUT[stray[1]!]})`;
  if (/is not accepted by the pattern '\\d\{4\}-\\d\{2\}-\\d\{2\}'/.test(message)) message += ' (a date must be YYYY-MM-DD, without time zone)';
  return message;
}

/** The value libxml2 quotes in a message about a bad value, if any. */
function quotedValue(message: string): string | undefined {
  const m =
    /The value '([^']*)' is not (?:accepted|an element|a valid)/.exec(message) ??
    // Stryker disable next-line Regex: it reads messages cleanMessage made of libxml2's, which start with Element '…' whenever this form applies
    /^Element '[^']+'(?:, attribute '[^']+')?: '([^']*)' is not a valid value/.exec(message);
  return m?.[1];
}
