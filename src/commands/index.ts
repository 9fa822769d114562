// Every command of the CLI, in the order --help lists them.
import type { Command } from './command.js';
import { convertCommand } from './convert.js';
import { runCommand } from './run.js';
import { uploadCommand } from './upload.js';
import { validateCommand } from './validate.js';
import { mappingCommand } from './mapping.js';
import { serveCommand } from './serve.js';
import { passwdCommand } from './passwd.js';

export const commands: Command[] = [runCommand, convertCommand, uploadCommand, validateCommand, mappingCommand as Command, serveCommand, passwdCommand];
