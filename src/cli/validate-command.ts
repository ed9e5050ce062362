import { validateRuleDocument, validateTagDocument } from '../definitions/index.js';
import { PortraitError } from '../errors/index.js';
import type { EventCatalog } from '../ingest/index.js';
import { readText } from './command-line.js';

/** One document of a file to validate, with the label its result line shows. */
interface Entry {
  label: string;
  kind: 'tag' | 'rule';
  document: unknown;
  /** Set when the entry of an export document is malformed; the document is then not validated. */
  problem?: string;
}

/**
 * Validates a file of definition documents against the schemas and the event
 * catalog, printing one line per document (`ok` or `error`, then every problem
 * with its path). The file holds a tag or rule document, an array of them, or
 * an export document (`portrait definitions export`), whose latest versions
 * are checked. Returns the exit code: 0 when every document is valid, else 1.
 */
export function validateFile(file: string, catalog: EventCatalog): number {
  const text = readText(file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err: unknown) {
    // A file that is not JSON is a failed validation like any other, not a crash with a stack trace.
    process.stdout.write(`error  ${file}: PRT_DEF_INVALID the file is not valid JSON: ${(err as Error).message}\n`);
    return 1;
  }
  let failed = 0;
  for (const entry of entries(file, parsed)) {
    if (entry.problem !== undefined) {
      failed++;
      process.stdout.write(`error  ${entry.label}: PRT_DEF_INVALID ${entry.problem}\n`);
      continue;
    }
    try {
      const id = entry.kind === 'rule' ? validateRuleDocument(entry.document, catalog).id : validateTagDocument(entry.document, catalog).id;
      process.stdout.write(`ok     ${entry.label} (${entry.kind} "${id}")\n`);
    } catch (err: unknown) {
      if (!(err instanceof PortraitError)) throw err;
      failed++;
      process.stdout.write(`error  ${entry.label}: ${err.code} ${err.message}\n`);
      const details = err.details ?? [];
      for (const d of details) process.stdout.write(`         ${d.path || '/'} ${d.message}\n`);
      if (details.length === 0 && err.path !== undefined) process.stdout.write(`         ${err.path || '/'} ${err.message}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

function entries(file: string, parsed: unknown): Entry[] {
  if (isExport(parsed)) {
    return parsed.definitions.map((d, i): Entry => {
      const label = `${file}#/definitions/${i}`;
      const item = (typeof d === 'object' && d !== null ? d : {}) as { kind?: unknown; versions?: unknown };
      const versions = Array.isArray(item.versions) ? (item.versions as Array<{ document?: unknown } | null>) : [];
      const latest = versions[versions.length - 1]?.document;
      if ((item.kind !== 'tag' && item.kind !== 'rule') || latest === undefined) {
        return { label, kind: 'tag', document: undefined, problem: `/definitions/${i} needs kind "tag" or "rule" and at least one version with a document` };
      }
      return { label, kind: item.kind, document: latest };
    });
  }
  if (Array.isArray(parsed)) return parsed.map((document, i) => ({ label: `${file}[${i}]`, kind: kindOf(document), document }));
  return [{ label: file, kind: kindOf(parsed), document: parsed }];
}

function isExport(parsed: unknown): parsed is { definitions: unknown[] } {
  return typeof parsed === 'object' && parsed !== null && (parsed as { format?: unknown }).format === 'portrait-definitions' && Array.isArray((parsed as { definitions?: unknown }).definitions);
}

/**
 * Whether a document is a rule or a tag, by its shape: tag documents have a
 * `kind` (`statistic` or `rule`, a tag computed from other tags); rule
 * documents have none, and have a `key` and an object `condition`.
 */
function kindOf(document: unknown): 'tag' | 'rule' {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return 'tag';
  const d = document as Record<string, unknown>;
  if ('kind' in d) return 'tag';
  return 'key' in d || (typeof d.condition === 'object' && d.condition !== null) ? 'rule' : 'tag';
}
