import { readJson, usage, writeText } from './command-line.js';
import { report, request, type ServerAnswer, type ServerOptions } from './server-client.js';

/**
 * `portrait rules list|get ID|create FILE|update ID FILE|start ID|stop ID|archive ID|delete ID|versions ID`:
 * manages rules on a running server. Prints the answer's body on stdout, or a
 * refusal with its code and field paths on stderr. Returns the exit code.
 */
export async function rulesCommand(args: ReadonlyArray<string>, server: ServerOptions): Promise<number> {
  const [verb, a, b] = args;
  const id = (value: string | undefined): string => {
    if (value === undefined) throw usage(`rules ${verb} needs an ID`);
    return encodeURIComponent(value);
  };
  const document = (path: string | undefined): string => {
    if (path === undefined) throw usage(`rules ${verb} needs a FILE`);
    return ruleBody(readJson(path));
  };
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
