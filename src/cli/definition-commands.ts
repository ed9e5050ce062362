import { readJson, readText, usage, writeText } from './command-line.js';
import { report, request, type ServerAnswer, type ServerOptions } from './server-client.js';

/**
 * `portrait rules list|get ID|create FILE|update ID FILE|start ID|stop ID|archive ID|delete ID|versions ID`:
 * manages rules on a running server. Prints the answer's body on stdout, or a
 * refusal with its code and field paths on stderr. Returns the exit code.
 */
export async function rulesCommand(args: ReadonlyArray<string>, server: ServerOptions): Promise<number> {
  const [verb, a, b] = args;
  const id = (value: string | undefined): string => idArgument(`rules ${verb}`, value);
  const document = (path: string | undefined): string => ruleBody(readJson(fileArgument(`rules ${verb}`, path)));
  let answer: ServerAnswer;
  switch (verb) {
    case 'list': answer = await request(server, 'GET', '/v1/rules'); break;
    case 'get': answer = await request(server, 'GET', `/v1/rules/${id(a)}`); break;
    case 'versions': answer = await request(server, 'GET', `/v1/rules/${id(a)}/versions`); break;
    case 'create': answer = await request(server, 'POST', '/v1/rules', document(a)); break;
    case 'update': answer = await request(server, 'PUT', `/v1/rules/${id(a)}`, document(b)); break;
    case 'delete': answer = await request(server, 'DELETE', `/v1/rules/${id(a)}`); break;
    // The API's verbs: `start` puts a rule online, `stop` takes it offline.
    case 'start':
    case 'stop':
    case 'archive': answer = await request(server, 'POST', `/v1/rules/${id(a)}/${verb}`); break;
    default: throw usage(`unknown rules subcommand "${verb ?? ''}"; one of list, get, create, update, start, stop, archive, delete, versions`);
  }
  return report(`rules ${verb}`, answer);
}

/**
 * `portrait tags list|get ID|create FILE|update ID FILE|online ID|offline ID|archive ID|versions ID|export`:
 * manages tags on a running server, as {@link rulesCommand} does rules. Returns the exit code.
 */
export async function tagsCommand(args: ReadonlyArray<string>, server: ServerOptions): Promise<number> {
  const [verb, a, b] = args;
  const id = (value: string | undefined): string => idArgument(`tags ${verb}`, value);
  const document = (path: string | undefined): string => readText(fileArgument(`tags ${verb}`, path));
  let answer: ServerAnswer;
  switch (verb) {
    case 'list': answer = await request(server, 'GET', '/v1/tags'); break;
    case 'get': answer = await request(server, 'GET', `/v1/tags/${id(a)}`); break;
    case 'versions': answer = await request(server, 'GET', `/v1/tags/${id(a)}/versions`); break;
    case 'create': answer = await request(server, 'POST', '/v1/tags', document(a)); break;
    case 'update': answer = await request(server, 'PUT', `/v1/tags/${id(a)}`, document(b)); break;
    case 'online':
    case 'offline':
    case 'archive': answer = await request(server, 'POST', `/v1/tags/${id(a)}/${verb}`); break;
    case 'export': answer = await request(server, 'GET', '/v1/definitions:export'); break;
    default: throw usage(`unknown tags subcommand "${verb ?? ''}"`);
  }
  return report(`tags ${verb}`, answer);
}

/** The ID argument of `command`, as a path segment; missing, a usage error. */
function idArgument(command: string, value: string | undefined): string {
  if (value === undefined) throw usage(`${command} needs an ID`);
  return encodeURIComponent(value);
}

/** The FILE argument of `command`; missing, a usage error. */
function fileArgument(command: string, value: string | undefined): string {
  if (value === undefined) throw usage(`${command} needs a FILE`);
  return value;
}

/**
 * `portrait definitions export [FILE] | import FILE`: the export document
 * (every tag and rule with its status and version history) to stdout or a
 * file, and such a document imported into a server. Returns the exit code.
 */
export async function definitionsCommand(args: ReadonlyArray<string>, server: ServerOptions): Promise<number> {
  const [verb, file] = args;
  switch (verb) {
    case 'export': {
      const answer = await request(server, 'GET', '/v1/definitions:export');
      if (file === undefined || answer.status >= 300) return report('definitions export', answer);
      // Written only after a successful export, so a refusal never replaces an earlier file.
      writeText(file, `${JSON.stringify(answer.body, null, 2)}\n`);
      process.stdout.write(`${JSON.stringify({ file, ...summary(answer.body) })}\n`);
      return 0;
    }
    case 'import': {
      if (file === undefined) throw usage('definitions import needs a FILE');
      return report('definitions import', await request(server, 'POST', '/v1/definitions:import', JSON.stringify(readJson(file))));
    }
    default:
      throw usage(`unknown definitions subcommand "${verb ?? ''}"; one of export, import`);
  }
}

/**
 * The body sent for a rule file. What `rules get` prints is accepted as it is:
 * its read-only `runtime` is left out (the server refuses unknown fields);
 * `version`, `status` and the times are the server's to read or ignore.
 */
function ruleBody(document: unknown): string {
  if (typeof document !== 'object' || document === null || Array.isArray(document) || !('runtime' in document)) return JSON.stringify(document);
  const copy: Record<string, unknown> = { ...(document as Record<string, unknown>) };
  delete copy.runtime;
  return JSON.stringify(copy);
}

/** Counts of an export document, for the line `definitions export FILE` prints. */
function summary(body: unknown): { revision: unknown; tags: number; rules: number } {
  const doc = (typeof body === 'object' && body !== null ? body : {}) as { revision?: unknown; definitions?: Array<{ kind?: unknown }> };
  const definitions = Array.isArray(doc.definitions) ? doc.definitions : [];
  return {
    revision: doc.revision ?? null,
    tags: definitions.filter((d) => d.kind === 'tag').length,
    rules: definitions.filter((d) => d.kind === 'rule').length,
  };
}
