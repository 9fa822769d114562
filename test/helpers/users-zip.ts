// Zips as Alma's SIS load takes them (or, for the tests of what `upload` refuses, nearly so): XML
// entries given as text, folders and other files as asked.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import yazl from 'yazl';

/** An Alma users file of one small valid user per primary id (valid against both schemas). */
export function usersXml(ids: string[]): string {
  const users = ids.map(
    (id) => `  <user>\n    <primary_id>${id}</primary_id>\n    <first_name>Ada</first_name>\n    <last_name>Student</last_name>\n    <user_group>UGRAD</user_group>\n    <expiry_date>2027-06-30</expiry_date>\n  </user>\n`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<users>\n${users.join('')}</users>\n`;
}

/** Writes a zip of the given entries in order; a name ending in `/` is a folder entry. */
export async function writeZip(file: string, entries: [name: string, content: string | Buffer][], options: { compress?: boolean } = {}): Promise<string> {
  const zip = new yazl.ZipFile();
  const mtime = new Date(Date.UTC(2026, 0, 1));
  for (const [name, content] of entries) {
    if (name.endsWith('/')) zip.addEmptyDirectory(name, { mtime });
    else zip.addBuffer(Buffer.from(content), name, { mtime, compress: options.compress ?? true });
  }
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    out.on('close', () => resolve());
    out.on('error', reject);
    zip.outputStream.pipe(out);
  });
  return file;
}

/** A zip of random bytes that do not compress, so that its size on the wire is about `bytes` (for delivery tests, which send it as it is). */
export function randomZip(file: string, bytes: number): Promise<string> {
  return writeZip(file, [['users.xml', randomBytes(bytes)]], { compress: false });
}
