// The independent CSV reader the tests hold sis2alma's reading to: Python's csv module (python3 is
// on every machine the tests run on, CI included), reading the file's bytes as they are
// (newline=''), so that it sees LF, CRLF and lone CR line endings itself.
import { execFileSync } from 'node:child_process';

const COUNT = `
import csv, sys
csv.field_size_limit(sys.maxsize)
with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:
    records = sum(1 for row in csv.reader(f, delimiter=sys.argv[2]) if row)
print(max(0, records - 1))
`;

/** The data records of a CSV file as Python's csv module counts them: the records that are not empty lines, less the header. */
export function pythonDataRows(file: string, delimiter = ','): number {
  return Number(execFileSync('python3', ['-c', COUNT, file, delimiter], { encoding: 'utf8' }).trim());
}
