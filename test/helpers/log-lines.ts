// Log lines carry the time they were written (src/shared/log.ts): `2026-12-02T03:15:00.123Z INFO
// sis2alma run: ...`. A test that runs the CLI cannot know that time, so it checks it here (an ISO
// time in UTC with milliseconds, of this test run) and compares the rest of each line exactly.
import assert from 'node:assert/strict';

/** The time a log line starts with. */
export const LOG_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) /;

const started = Date.now();

/**
 * The output with the time of each line that has one checked and replaced by `<time>`; other lines
 * (a command's failure line, `sis2alma: ...`) as they are.
 */
export function untimed(output: string): string {
  return output
    .split('\n')
    .map((line) => {
      const time = LOG_TIME.exec(line)?.[1];
      if (time === undefined) return line;
      const at = new Date(time);
      assert.equal(at.toISOString(), time, `a real time: ${line}`);
      assert.ok(at.getTime() >= started - 1000 && at.getTime() <= Date.now() + 1000, `the time the line was written: ${line}`);
      return line.replace(LOG_TIME, '<time> ');
    })
    .join('\n');
}
