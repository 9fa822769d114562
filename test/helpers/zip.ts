// Reads a zip's entries, for tests that look inside what the tool wrote.
import yauzl from 'yauzl';

export interface ZipEntryText {
  name: string;
  text: string;
}

export interface ZipEntryBytes {
  name: string;
  data: Buffer;
  /** The entry's CRC-32 as the zip's directory gives it. */
  crc32: number;
}

export async function readZip(file: string): Promise<ZipEntryText[]> {
  return (await readZipEntries(file)).map((e) => ({ name: e.name, text: e.data.toString('utf8') }));
}

export function readZipEntries(file: string): Promise<ZipEntryBytes[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (error, zip) => {
      if (error || !zip) return reject(error);
      const entries: ZipEntryBytes[] = [];
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) return reject(err);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            entries.push({ name: entry.fileName, data: Buffer.concat(chunks), crc32: entry.crc32 });
            zip.readEntry();
          });
          stream.on('error', reject);
        });
      });
      zip.on('end', () => resolve(entries));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}
