// The one rule for skipping: a test may be skipped only because a system tool that .ci/run
// installs (sshd, ssh-keygen, openssl, curl, xmllint), or the root that mounting a tmpfs needs, is
// missing on a developer's machine; never because the product failed to start or a command is not
// registered (that must fail). In CI (CI=true) every tool is installed by .ci/run, so a missing one
// is a failure, not a skip: a suite that passes by skipping proves nothing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';

const inCi = process.env.CI === 'true';

/**
 * For a test's or a suite's `skip` option: `why` (the tool that is missing) outside CI; in CI the
 * tests run (and fail on the missing tool), and one more test fails naming it.
 */
export function toolMissing(why: string | undefined): string | undefined {
  if (why === undefined) return undefined;
  if (!inCi) return why;
  test(`system tool missing in CI: ${why}`, () => {
    assert.fail(`${why}: .ci/run installs it, so in CI this fails instead of skipping`);
  });
  return undefined;
}

/** Inside a test: skips for `why` outside CI, fails in CI. */
export function skipForTool(t: TestContext, why: string): void {
  if (inCi) assert.fail(`${why}: .ci/run installs it, so in CI this fails instead of skipping`);
  t.skip(why);
}
