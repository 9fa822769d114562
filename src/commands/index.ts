// Every command of the CLI, in the order --help lists them. A command's file declares its options
// and imports the wings it runs in its handler, when it runs: `sis2alma --version` and `--help` load
// the options only (issue 14, item 4; test/fast-start.test.ts keeps it so).
import type { Command } from './command.js';
import { convertCommand } from './convert.js';
import { runCommand } from './run.js';
import { uploadCommand } from './upload.js';
import { validateCommand } from './validate.js';
import { mappingCommand } from './mapping.js';
import { serveCommand } from './serve.js';
import { passwdCommand } from './passwd.js';
import { historyCommand } from './history.js';

export const commands: Command[] = [runCommand, convertCommand, uploadCommand, validateCommand, mappingCommand as Command, historyCommand, serveCommand, passwdCommand];
