// `sis2alma passwd`: makes the password hash of a push account, for `serve.accounts` in the run
// config. The password is read from standard input, never from the command line (where `ps` and
// shell history would show it): typed twice without echo at a terminal, or one line from a pipe.
import type { Command } from './command.js';
import { RunError } from '../shared/errors.js';

interface PasswdArgs {
  username?: string;
}

export const passwdCommand: Command = {
  command: 'passwd',
  describe: 'Print the password hash of a push account (the password is read from standard input)',
  builder: (yargs) =>
    yargs
      .option('username', { type: 'string', describe: 'Print a whole accounts: entry for this user instead of the hash alone' })
      .example('$0 passwd --username infiniti', 'type the password twice; paste the output under serve.accounts')
      .example('head -c 24 /dev/urandom | base64 | tee sis-password.txt | $0 passwd', 'a random password, kept for the SIS, and its hash'),
  handler: async (args) => {
    const argv = args as unknown as PasswdArgs;
    if (argv.username !== undefined && (argv.username === '' || argv.username.includes(':'))) {
      throw new RunError('usage', `--username must be a non-empty name without a colon, not '${argv.username}'`);
    }
    const password = await readPassword(process.stdin, process.stderr);
    const { hashPassword } = await import('../serve/passwd.js');
    const hash = await hashPassword(password);
    process.stdout.write(argv.username ? `- username: ${JSON.stringify(argv.username)}\n  password_hash: "${hash}"\n` : `${hash}\n`);
  },
};

/** The password from `input`: prompted twice without echo when it is a terminal, else its first line. */
export async function readPassword(input: NodeJS.ReadStream, prompts: NodeJS.WritableStream): Promise<string> {
  let password: string;
  if (input.isTTY) {
    password = await readHidden(input, prompts, 'New password: ');
    const again = await readHidden(input, prompts, 'Repeat it: ');
    if (again !== password) throw new RunError('usage', 'the two passwords differ; nothing was printed');
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of input) chunks.push(chunk as Buffer);
    password = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  if (password.length === 0) throw new RunError('usage', 'the password is empty; give it on standard input (typed, or one line from a pipe)');
  if (password.length < 12) throw new RunError('usage', `the password has ${password.length} characters; use at least 12 (a script types it, not a person)`);
  return password;
}

function readHidden(input: NodeJS.ReadStream, prompts: NodeJS.WritableStream, prompt: string): Promise<string> {
  prompts.write(prompt);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      prompts.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (data: string) => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new RunError('usage', 'cancelled; nothing was printed'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
  });
}
