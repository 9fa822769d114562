// `sis2alma serve --config FILE`: the push endpoint, until SIGINT or SIGTERM. On a signal it stops
// taking requests and lets the imports that are running finish, so that no zip is left half made.
// SIGHUP reads the config again (`systemctl reload`): new accounts or a renewed certificate need
// no restart, and a config with problems is reported and not taken.
import type { Command } from './command.js';
import { createLogger } from '../shared/log.js';

interface ServeArgs {
  config: string;
  quiet?: boolean;
}

export const serveCommand: Command = {
  command: 'serve',
  describe: 'Take CSV files pushed over HTTP(S) (POST /api/import/users) and import them as `run` does, answering in JSON',
  builder: (yargs) =>
    yargs
      .option('config', { type: 'string', demandOption: true, describe: 'The run config (YAML) with a serve: section: host, port, tls, accounts' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Log only refused logins, failed imports and warnings' })
      .example('$0 serve --config /etc/sis2alma/config.yaml', 'listen for pushes, as a systemd service would')
      .example('curl -X POST -F "file=@users.csv" https://USER:PASSWORD@HOST/api/import/users', 'what the SIS runs to push its file'),
  handler: async (args) => {
    const argv = args as unknown as ServeArgs;
    const log = createLogger({ quiet: argv.quiet ?? false });
    // Loaded here, not with the CLI: the other commands need no HTTP server or form parser.
    const [{ loadServeConfig }, { IMPORT_PATH, startServer }] = await Promise.all([import('../serve/config.js'), import('../serve/server.js')]);
    type ServeConfig = ReturnType<typeof loadServeConfig>;
    const config = loadServeConfig(argv.config);
    const server = await startServer(config, { log });
    const accounts = (c: ServeConfig) => `${c.serve.accounts.size} account${c.serve.accounts.size === 1 ? '' : 's'}`;
    // Stdout may be a pipe to a log collector: the start and reload lines go out even with --quiet.
    process.stdout.write(`sis2alma: listening on ${server.url}${IMPORT_PATH} (${accounts(config)})\n`);
    const reload = () => {
      try {
        const next = loadServeConfig(argv.config);
        server.reload(next);
        process.stdout.write(`sis2alma: SIGHUP: reloaded ${argv.config} (${accounts(next)})\n`);
      } catch (error) {
        // The problems as `serve` reports them at start (file:line:column), never a stack.
        process.stderr.write(`sis2alma: SIGHUP: ${argv.config} was not reloaded; the server goes on with the config it has:\n${(error as Error).message}\n`);
      }
    };
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.off('SIGHUP', reload);
        process.stdout.write(`sis2alma: ${signal}: finishing running imports, then stopping\n`);
        void server.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
