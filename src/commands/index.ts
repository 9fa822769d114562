// Every command of the CLI, in the order --help lists them. A command handler returns nothing, or
// sets `argv.exitCode` to end with another code than 0; it throws RunError to stop with a message.
import type { CommandModule } from 'yargs';
import { convertCommand } from './convert.js';
import { runCommand } from './run.js';
import { uploadCommand } from './upload.js';
import { validateCommand } from './validate.js';
import { mappingCommand } from './mapping.js';
import { serveCommand } from './serve.js';
import { passwdCommand } from './passwd.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Command = CommandModule<object, any>;

export const commands: Command[] = [runCommand, convertCommand, uploadCommand, validateCommand, mappingCommand as Command, serveCommand, passwdCommand];
