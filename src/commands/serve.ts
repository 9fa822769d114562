// `sis2alma serve --config FILE`: the push endpoint, until SIGINT or SIGTERM. On a signal it stops
// taking requests and lets the imports that are running finish, so that no zip is left half made.
// SIGHUP reads the config again (`systemctl reload`): new accounts or a renewed certificate need
// no restart, and a config with problems is reported and not taken.
import { logFormatOption, type Command } from './command.js';
import { createLogger, type LogFormat } from '../shared/log.js';

interface ServeArgs {
  config: string;
  quiet?: boolean;
  logFormat?: LogFormat;
}

export const serveCommand: Command = {
  command: 'serve',
  describe: 'Take CSV files pushed over HTTP(S) (POST /api/import/users) and import them as `run` does, answering in JSON',
  builder: (yargs) =>
    logFormatOption(yargs)
      .option('config', { type: 'string', demandOption: true, describe: 'The run config (YAML) with a serve: section: host, port, tls, accounts' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Log only refused logins, failed imports and warnings' })
      .example('$0 serve --config /etc/sis2alma/config.yaml', 'listen for pushes, as a systemd service would')
      .example('curl -X POST -F "file=@users.csv" https://USER:PASSWORD@HOST/api/import/users', 'what the SIS runs to push its file'),
  handler: async (args) => {
    const argv = args as unknown as ServeArgs;
    const log = createLogger({ command: 'serve', format: argv.logFormat ?? 'text', quiet: argv.quiet ?? false });
    // The start, reload and stop lines go out even with --quiet: stdout may be a pipe to a log collector.
    const always = createLogger({ command: 'serve', format: argv.logFormat ?? 'text' });
    // Loaded here, not with the CLI: the other commands need no HTTP server or form parser.
    const [{ loadServeConfig }, { IMPORT_PATH, startServer }] = await Promise.all([import('../serve/config.js'), import('../serve/server.js')]);
    type ServeConfig = ReturnType<typeof loadServeConfig>;
    const config = loadServeConfig(argv.config);
    const server = await startServer(config, { log });
    const accounts = (c: ServeConfig) => `${c.serve.accounts.size} account${c.serve.accounts.size === 1 ? '' : 's'}`;
    always.info(`listening on ${server.url}${IMPORT_PATH} (${accounts(config)})`);
    const reload = () => {
      try {
        const next = loadServeConfig(argv.config);
        server.reload(next);
        always.info(`SIGHUP: reloaded ${argv.config} (${accounts(next)})`);
      } catch (error) {
        // The problems as `serve` reports them at start (file:line:column), never a stack.
        always.warn(`SIGHUP: ${argv.config} was not reloaded; the server goes on with the config it has:\n${(error as Error).message}`);
      }
    };
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.off('SIGHUP', reload);
        always.info(`${signal}: finishing running imports, then stopping`);
        void server.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
