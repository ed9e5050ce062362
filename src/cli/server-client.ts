import { PortraitError } from '../errors/index.js';

/** Where a command finds the running server, and how long it waits for each answer. */
export interface ServerOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Longest wait for one answer (connecting, the status and the whole body), ms. */
  readonly timeoutMs: number;
}

/**
 * How long a command waits for one answer, ms.
 * @defaultValue 60000
 */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** One answer of the server: its HTTP status and its body (parsed JSON, or the text when it is not JSON). */
export interface ServerAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** The server could not be reached: nothing listens at the URL, the name does not resolve, the connection broke. */
export class ServerUnreachableError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'ServerUnreachableError';
  }
}

/**
 * Sends one request and reads the whole answer within `server.timeoutMs`.
 * Throws `PRT_SERVING_TIMEOUT` when the time runs out and
 * {@link ServerUnreachableError} when there is no server to talk to; any
 * HTTP status, refusals included, is returned as an answer.
 */
export async function request(server: ServerOptions, method: string, path: string, body?: string, contentType = 'application/json'): Promise<ServerAnswer> {
  const target = new URL(path, server.url);
  let status: number;
  let text: string;
  try {
    // One signal for the request and the body: a server that sends headers and then stalls also times out.
    const res = await fetch(target, {
      method,
      headers: body === undefined ? {} : { 'content-type': contentType },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(server.timeoutMs),
    });
    status = res.status;
    text = await res.text();
  } catch (err: unknown) {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      throw new PortraitError('PRT_SERVING_TIMEOUT', `${method} ${target.href} got no answer within ${server.timeoutMs} ms (raise it with --timeout MS)`, { path: target.pathname }, { cause: err });
    }
    throw new ServerUnreachableError(`cannot reach the server at ${target.origin} (${networkReason(err)}); is "portrait serve" running there? Point to it with --url URL or PORTRAIT_URL`, { cause: err });
  }
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the answer is shown as text
  }
  return { status, body: parsed };
}

/** The error body the API answers with: `{ statusCode, code, error, message, path?, details? }`. */
interface ErrorBody {
  code: string;
  message: string;
  path?: string;
  details?: Array<{ path: string; message: string }>;
}

function isErrorBody(body: unknown): body is ErrorBody {
  return typeof body === 'object' && body !== null && typeof (body as ErrorBody).code === 'string' && typeof (body as ErrorBody).message === 'string';
}

/**
 * The text a refused request prints to stderr: the command, the HTTP status,
 * the error code and message, then one line per problem with its path.
 */
export function describeRefusal(command: string, answer: ServerAnswer): string {
  const body = answer.body;
  if (!isErrorBody(body)) {
    const shown = typeof body === 'string' ? body : JSON.stringify(body);
    return `portrait: ${command} failed: HTTP ${answer.status}${shown === '' ? '' : ` ${shown}`}\n`;
  }
  let out = `portrait: ${command} failed: HTTP ${answer.status} ${body.code}: ${body.message}\n`;
  const details = Array.isArray(body.details) ? body.details : [];
  if (details.length > 0) for (const d of details) out += `  ${d.path || '/'} ${d.message}\n`;
  else if (typeof body.path === 'string' && body.path !== '') out += `  at ${body.path}\n`;
  return out;
}

/**
 * Prints an answer: a success's body as JSON on stdout (exit code 0), a
 * refusal on stderr as {@link describeRefusal} writes it (exit code 1).
 */
export function report(command: string, answer: ServerAnswer): number {
  if (answer.status < 300) {
    process.stdout.write(`${JSON.stringify(answer.body, null, 2)}\n`);
    return 0;
  }
  process.stderr.write(describeRefusal(command, answer));
  return 1;
}

/** The low-level reason fetch gives, e.g. `connect ECONNREFUSED 127.0.0.1:8080`. */
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error && cause.message !== '') return cause.message;
  if (cause instanceof AggregateError) return cause.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ');
  return err instanceof Error ? err.message : String(err);
}
