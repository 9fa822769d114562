// Runs `sis2alma mapping ...` in-process, as the CLI would, collecting what it prints.
import yargs from 'yargs';
import { createMappingCommand } from '../../src/commands/mapping.js';

export async function runMappingCommand(args: string[]): Promise<{ lines: string[]; exitCode: number }> {
  const lines: string[] = [];
  const argv = await yargs(args)
    .command(createMappingCommand({ write: (line) => lines.push(line) }))
    .strict()
    .fail((message, error) => {
      throw error ?? new Error(message);
    })
    .parseAsync();
  return { lines, exitCode: (argv as { exitCode?: number }).exitCode ?? 0 };
}
