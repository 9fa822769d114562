// `sis2alma validate FILE...`: checks Alma user XML files (or the zips delivered to Alma) against
// the project's XSD or an institution's own, and says for each problem the file, line and user.
// It works on any users file, not only ours, so that a library can check a file before Alma's
// SIS load sees it.
import { open, readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type yauzl from 'yauzl';
import type { Argv, CommandModule } from 'yargs';
import { EXIT_CODES } from '../shared/errors.js';
import { maskId } from '../shared/log.js';
import type { XmlProblem } from '../pipeline/validate.js';

export interface ValidateArgs {
  file: string[];
  schema?: string;
  'show-pii'?: boolean;
  exitCode?: number;
}

export interface ValidateFilesOptions {
  /** XSD to check against; default the project's schemas/alma_users.xsd. */
  schema?: string;
  /** Show primary ids and values unmasked. */
  showPii?: boolean;
  /** Where report lines go (one call per line, without newline); default stdout. A line is a problem, or a file's summary. */
  write?: (line: string, kind: LineKind) => void;
  /**
   * Hold each file to what Alma's SIS load takes as one package, as `upload` does before it sends:
   * a zip (not a bare XML file) of at most 50 entries and 4 GB, every entry an .xml file with the
   * <users> root. A zip that breaks the first rules gets one line, and its users are not checked.
   */
  almaPackage?: boolean;
}

export type LineKind = 'problem' | 'summary';

export interface ValidateFilesResult {
  /** How many files (or zip entries) were checked, and how many of those, or of the files that could not be read, failed. */
  checked: number;
  failed: number;
}

/**
 * Checks each file and writes the report. A missing or broken XSD throws RunError
 * ('schema_invalid'); everything wrong with the files themselves is reported, not thrown.
 */
export async function validateFiles(files: readonly string[], options: ValidateFilesOptions = {}): Promise<ValidateFilesResult> {
  const write = options.write ?? stdoutWriter();
  // Loaded here, not with the CLI: libxmljs2 and the zip packages are for the commands that check.
  const [{ AlmaSchema }, limits, { default: zipReader }] = await Promise.all([import('../pipeline/validate.js'), import('../pipeline/package.js'), import('yauzl')]);
  const schema = AlmaSchema.load(options.schema);
  const show = (id: string) => (options.showPii ? id : maskId(id));
  const result: ValidateFilesResult = { checked: 0, failed: 0 };
  const refuse = refuser(write, result);

  const checkXml = (where: string, bytes: Buffer): void => {
    result.checked++;
    const report = schema.check(bytes);
    if (!report.wellFormed) {
      const p = report.problems[0]!;
      return refuse(`${where}:${p.line}${p.column ? `:${p.column}` : ''}: not well-formed XML: ${p.message}`);
    }
    for (const p of report.problems) write(`${where}:${p.line}: ${who(p, show)}: ${maskValue(p, options.showPii)}`, 'problem');
    let n = report.problems.length;
    // A schema that declares <user> too (Ex Libris' rest_users.xsd includes rest_user.xsd) passes
    // a file of one bare <user>, which the SIS load does not take.
    if (options.almaPackage && report.root !== 'users' && !report.problems.some((p) => p.message.includes('No matching global declaration'))) {
      write(`${where}: the root element is <${report.root}>; Alma's SIS load takes files whose root is <users>`, 'problem');
      n++;
    }
    const users = `${report.users.length} ${report.users.length === 1 ? 'user' : 'users'}`;
    write(`${where}: ${users}, ${n === 0 ? 'valid' : `${n} ${n === 1 ? 'problem' : 'problems'}`}`, 'summary');
    if (n > 0) result.failed++;
  };

  for (const file of files) {
    let head: { bytes: Buffer; size: number };
    try {
      head = await readHead(file);
    } catch (error) {
      refuse(`${file}: cannot read: ${readError(error)}`);
      continue;
    }
    if (isZip(head.bytes)) {
      await checkZip(file, head.size, checkXml, write, result, options.almaPackage ?? false, { ...limits, yauzl: zipReader });
    } else if (/\.zip$/i.test(file) || options.almaPackage) {
      refuse(`${file}: not a zip file (it does not start with a zip header)`);
    } else {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        refuse(`${file}: cannot read: ${readError(error)}`);
        continue;
      }
      checkXml(file, bytes);
    }
  }
  return result;
}

/** Writes a problem line and counts a failed file (or zip entry). */
function refuser(write: (line: string, kind: LineKind) => void, result: ValidateFilesResult): (line: string) => void {
  return (line) => {
    write(line, 'problem');
    result.failed++;
  };
}

/**
 * The first bytes and the size of a file. A zip is then read from the file where yauzl needs it,
 * never whole: Alma takes zips of up to 4 GB, and Node reads no file over 2 GB into one buffer.
 */
async function readHead(file: string): Promise<{ bytes: Buffer; size: number }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.alloc(4);
    const { bytesRead } = await handle.read(bytes, 0, 4, 0);
    return { bytes: bytes.subarray(0, bytesRead), size };
  } finally {
    await handle.close();
  }
}

/** Lines to stdout; when stdout is closed early (`| head`), the rest is dropped instead of crashing on EPIPE. */
function stdoutWriter(): (line: string) => void {
  let closed = false;
  process.stdout.once('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    closed = true;
  });
  return (line: string) => {
    if (!closed) process.stdout.write(line + '\n');
  };
}

async function checkZip(
  file: string,
  size: number,
  checkXml: (where: string, bytes: Buffer) => void,
  write: (line: string, kind: LineKind) => void,
  result: ValidateFilesResult,
  almaPackage: boolean,
  { ALMA_MAX_FILES_PER_ZIP, ALMA_MAX_ZIP_BYTES, yauzl }: { ALMA_MAX_FILES_PER_ZIP: number; ALMA_MAX_ZIP_BYTES: number; yauzl: typeof import('yauzl') },
): Promise<void> {
  const refuse = refuser(write, result);
  if (almaPackage && size > ALMA_MAX_ZIP_BYTES) return refuse(`${file}: the zip is ${size} bytes; Alma takes at most 4 GB (${ALMA_MAX_ZIP_BYTES} bytes) in one zip`);
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  } catch (error) {
    return refuse(`${file}: not a readable zip file: ${(error as Error).message}`);
  }
  let xmlEntries = 0;
  try {
    let list: AsyncIterable<yauzl.Entry> | yauzl.Entry[] = entries(zip);
    if (almaPackage) {
      // The whole list first (at most 50 names), so that a zip Alma would refuse is told so before
      // minutes go into checking its users.
      if (zip.entryCount > ALMA_MAX_FILES_PER_ZIP) return refuse(`${file}: the zip holds ${zip.entryCount} files; Alma takes at most ${ALMA_MAX_FILES_PER_ZIP} XML files in one zip`);
      const all: yauzl.Entry[] = [];
      for await (const entry of list) all.push(entry);
      const others = all.filter((e) => !isXmlEntry(e)).map((e) => e.fileName);
      if (others.length > 0) {
        return refuse(`${file}: the zip holds ${others.length === 1 ? 'an entry' : `${others.length} entries`} that ${others.length === 1 ? 'is' : 'are'} not an .xml file (${others.join(', ')}); Alma's SIS load takes a zip of XML files only`);
      }
      list = all;
    }
    for await (const entry of list) {
      if (!isXmlEntry(entry)) continue;
      xmlEntries++;
      const where = `${file}!${entry.fileName}`;
      let content: Buffer;
      try {
        content = await readAll(await zip.openReadStreamPromise(entry));
      } catch (error) {
        refuse(`${where}: cannot read the entry: ${(error as Error).message}`);
        continue;
      }
      checkXml(where, content);
    }
  } catch (error) {
    return refuse(`${file}: not a readable zip file: ${(error as Error).message}`);
  } finally {
    zip.close();
  }
  if (xmlEntries === 0) refuse(`${file}: the zip holds no .xml file`);
}

function isXmlEntry(entry: yauzl.Entry): boolean {
  return !entry.fileName.endsWith('/') && /\.xml$/i.test(entry.fileName);
}

/** The zip's entries one at a time (yauzl's lazyEntries protocol as an async iterator). */
async function* entries(zip: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const next = await new Promise<yauzl.Entry | null>((resolve, reject) => {
      const onEntry = (entry: yauzl.Entry) => done(entry);
      const onEnd = () => done(null);
      const onError = (error: Error) => {
        cleanup();
        reject(error);
      };
      const cleanup = () => {
        zip.off('entry', onEntry);
        zip.off('end', onEnd);
        zip.off('error', onError);
      };
      const done = (value: yauzl.Entry | null) => {
        cleanup();
        resolve(value);
      };
      zip.on('entry', onEntry);
      zip.on('end', onEnd);
      zip.on('error', onError);
      zip.readEntry();
    });
    if (next === null) return;
    yield next;
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function isZip(bytes: Buffer): boolean {
  // Local file header, or the end-of-central-directory record of an empty zip.
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

function readError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'it is a folder, not a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return (error as Error).message;
  }
}

function who(p: XmlProblem, show: (id: string) => string): string {
  if (p.userIndex === undefined) return '-';
  return p.primary_id !== undefined ? `user ${show(p.primary_id)}` : `user #${p.userIndex + 1} (no primary_id)`;
}

/** Element values can be patron data (a birth date); attribute values (preferred, segment_type, desc) are not. */
function maskValue(p: XmlProblem, showPii: boolean | undefined): string {
  if (showPii || p.value === undefined || p.value === '' || /^Element '[^']+', attribute /.test(p.message)) return p.message;
  return p.message.split(`'${p.value}'`).join(`'${maskId(p.value)}'`);
}

/** The command, writing its report through `write` (tests pass their own; the CLI uses stdout). */
export function createValidateCommand(options: { write?: (line: string) => void } = {}): CommandModule<object, ValidateArgs> {
  return {
    command: 'validate <file..>',
    describe: 'Check Alma user XML files (or zips of them) against the users XSD',
    builder: (yargs: Argv<object>) =>
      yargs
        .positional('file', { type: 'string', array: true, demandOption: true, describe: 'An Alma users XML file, or a zip holding such files (every .xml entry is checked)' })
        .option('schema', { type: 'string', describe: "XSD to check against (default: sis2alma's schemas/alma_users.xsd); e.g. Ex Libris' rest_users.xsd" })
        .option('show-pii', { type: 'boolean', default: false, describe: 'Show primary ids and values in full instead of masked' })
        .example('$0 validate out/users_infiniti_20261121-031500.zip', 'check a zip sis2alma wrote against the project schema')
        .example('$0 validate out/*.zip --schema rest_users.xsd', "check zips against Ex Libris' XSD") as unknown as Argv<ValidateArgs>,
    handler: async (argv) => {
      const result = await validateFiles(argv.file, {
        ...(argv.schema !== undefined ? { schema: argv.schema } : {}),
        ...(options.write ? { write: options.write } : {}),
        showPii: argv['show-pii'] === true,
      });
      if (result.failed > 0) argv.exitCode = EXIT_CODES.xml_invalid;
    },
  };
}

export const validateCommand: CommandModule<object, ValidateArgs> = createValidateCommand();
