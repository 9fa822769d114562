// What went wrong in an SFTP step, in one line that names host and path and never a credential,
// and whether a retry may help (the connection failed, not the request).
import { RunError } from '../shared/errors.js';
import { DeliveryError, firstLine, formatSeconds } from './target.js';

export interface ConnectionState {
  /** Set when the host key check refused the server: the reason, with the fingerprint seen. */
  hostKeyProblem?: string;
  /** The last error ssh2 raised, before ssh2-sftp-client rewrote it (it keeps `level`). */
  raw?: Error & { code?: string | number; level?: string };
  lost: boolean;
}
export interface SftpErrorContext {
  host: string;
  port: number;
  username: string;
  /** A verb phrase: 'connect to', 'list', 'write', 'rename'. */
  action: string;
  path: string;
  timeoutMs: number;
  /** How we logged in, without the secret: `private key /etc/…` */
  auth: string;
}

/**
 * One line for each way an SFTP step fails, naming host and path and never a credential. The
 * error may come from ssh2 (code, level), from ssh2-sftp-client (rewritten message; SFTP status in
 * `code`: 2 no such file, 3 permission denied, 4 failure), or from the socket.
 */
export function classifySftpError(error: unknown, ctx: SftpErrorContext, state: Partial<ConnectionState> = {}): DeliveryError | RunError {
  if (error instanceof RunError) return error;
  const server = `${ctx.host}:${ctx.port}`;
  if (state.hostKeyProblem) return new DeliveryError('host_key_rejected', state.hostKeyProblem, false);
  const e = (error ?? {}) as { code?: string | number; level?: string; message?: string };
  const raw: { code?: string | number; level?: string; message?: string } = state.raw ?? {};
  const codes = [e.code, raw.code];
  const text = `${e.message ?? ''} ${raw.message ?? ''}`;
  const has = (c: string | number) => codes.includes(c);
  const connecting = ctx.action === 'connect to';

  if (/no matching host key/i.test(text)) {
    return new DeliveryError('host_key_rejected', `${server} has no host key of the type the config pins (the (TYPE) of host_key, or the key types known_hosts lists for it): connection refused`, false);
  }
  if (has('ENOTFOUND')) return new DeliveryError('delivery_failed', `cannot find host ${ctx.host}: DNS lookup failed (is the host name right?)`, false);
  if (has('EAI_AGAIN')) return new DeliveryError('delivery_failed', `cannot look up host ${ctx.host} just now (DNS did not answer)`, true);
  if (has('ECONNREFUSED')) return new DeliveryError('delivery_failed', `${server} refused the connection (is the SFTP server running there, and is the port right?)`, true);
  if (has('EHOSTUNREACH') || has('ENETUNREACH')) return new DeliveryError('delivery_failed', `cannot reach ${server}: no route to the host`, true);
  if (raw.level === 'client-authentication' || e.level === 'client-authentication' || /authentication methods failed/i.test(text)) {
    return new DeliveryError('delivery_failed', `${server} refused the login of user ${ctx.username} with ${ctx.auth}`, false);
  }
  if (raw.level === 'client-timeout' || has('ETIMEDOUT') || /timed out/i.test(text)) {
    return new DeliveryError('delivery_failed', `no answer from ${server} within ${formatSeconds(ctx.timeoutMs)}${connecting ? '' : ` while trying to ${ctx.action} ${ctx.path}`}`, true);
  }
  if (has('ECONNRESET') || has('EPIPE') || has('ERR_NOT_CONNECTED') || state.lost || /unexpected (end|close)|no sftp connection|connection (lost|closed)|not connected/i.test(text)) {
    return new DeliveryError('delivery_failed', `connection to ${server} was lost while trying to ${ctx.action} ${ctx.path}`, true);
  }
  if (has(2) || has('ENOENT')) {
    return new DeliveryError('delivery_failed', ctx.action === 'list' || connecting ? `remote folder ${ctx.path} does not exist on ${server}` : `cannot ${ctx.action} ${ctx.path} on ${server}: no such file or folder (does the remote folder exist?)`, false);
  }
  if (has(3) || has('EACCES')) return new DeliveryError('delivery_failed', `permission denied on ${server}: cannot ${ctx.action} ${ctx.path}`, false);
  if ((has(4) || has(14)) && ctx.action === 'write') {
    // OpenSSH's server answers a full disk or a quota with the generic SFTP "failure" status.
    return new DeliveryError('delivery_failed', `${server} could not write ${ctx.path} (the server's disk may be full or a quota reached)`, false);
  }
  if (has(4)) return new DeliveryError('delivery_failed', `${server} failed to ${ctx.action} ${ctx.path}`, false);
  return new DeliveryError('delivery_failed', `cannot ${ctx.action} ${ctx.path} on ${server}: ${firstLine(error)}`, connecting);
}

