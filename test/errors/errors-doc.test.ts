import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCodes, PortraitError, type ErrorCode } from '../../src/errors/index.js';

const docPath = new URL('../../docs/errors.md', import.meta.url);
const doc = readFileSync(docPath, 'utf8');

interface DocumentedCode {
  code: string;
  body: string;
}

/** Every `### PRT_…` section of the doc with the text up to the next heading. */
function sections(text: string): DocumentedCode[] {
  const out: DocumentedCode[] = [];
  const parts = text.split(/^(?=#{2,3} )/m);
  for (const part of parts) {
    const m = /^### (\S+)\s*\n/.exec(part);
    if (m !== null) out.push({ code: m[1]!, body: part.slice(m[0].length) });
  }
  return out;
}

/** Rows of the summary table: `| \`CODE\` | status | yes/no | summary |`. */
function tableRows(text: string): Array<{ code: string; status: number; retryable: string }> {
  const rows: Array<{ code: string; status: number; retryable: string }> = [];
  for (const line of text.split('\n')) {
    const m = /^\| `(PRT_[A-Z_]+)` \| (\d+) \| (yes|no) \|/.exec(line);
    if (m !== null) rows.push({ code: m[1]!, status: Number(m[2]), retryable: m[3]! });
  }
  return rows;
}

const registry = Object.keys(errorCodes).sort();

describe('docs/errors.md', () => {
  const documented = sections(doc);

  it('has one section per registry code and none for codes that do not exist', () => {
    const names = documented.map((s) => s.code);
    expect(new Set(names).size, 'a code is documented twice').toBe(names.length);
    const missing = registry.filter((c) => !names.includes(c));
    const unknown = names.filter((c) => !registry.includes(c));
    expect(missing, 'codes in src/errors/codes.ts without a section in docs/errors.md').toEqual([]);
    expect(unknown, 'sections in docs/errors.md for codes that are not in src/errors/codes.ts').toEqual([]);
  });

  it.each(registry)('%s: states the registry status and retryability, when it happens and how to fix it', (code) => {
    const section = documented.find((s) => s.code === code);
    expect(section, `no section for ${code}`).toBeDefined();
    const body = section!.body;
    const spec = errorCodes[code as ErrorCode];
    expect(/\*\*HTTP status:\*\* (\d+)/.exec(body)?.[1], `${code} status`).toBe(String(spec.status));
    expect(/\*\*Retryable:\*\* (yes|no)/.exec(body)?.[1], `${code} retryable`).toBe(spec.retryable ? 'yes' : 'no');
    expect(/\*\*When:\*\*\s+\S[\s\S]{20,}?\*\*Fix:\*\*/.test(body), `${code} needs a "When:" paragraph before "Fix:"`).toBe(true);
    expect(/\*\*Fix:\*\*\s+\S.{10,}/.test(body), `${code} needs a "Fix:" paragraph`).toBe(true);
  });

  it('has a summary table that lists every code once with the registry status and retryability', () => {
    const rows = tableRows(doc);
    expect(rows.map((r) => r.code).sort()).toEqual(registry);
    for (const row of rows) {
      const spec = errorCodes[row.code as ErrorCode];
      expect([row.code, row.status, row.retryable]).toEqual([row.code, spec.status, spec.retryable ? 'yes' : 'no']);
    }
  });

  it('mentions no PRT_ code anywhere that the registry lacks', () => {
    const mentioned = new Set(doc.match(/PRT_[A-Z_]+[A-Z]/g) ?? []);
    expect([...mentioned].filter((c) => !registry.includes(c))).toEqual([]);
  });
});

describe('the sync check itself', () => {
  it('notices a missing and an unknown code', () => {
    const cut = doc.replace(/^### PRT_STORE_LOCKED[\s\S]*?(?=^##)/m, '### PRT_NOT_A_CODE\n\n**HTTP status:** 400\n\n');
    const names = sections(cut).map((s) => s.code);
    expect(names).not.toContain('PRT_STORE_LOCKED');
    expect(names.filter((c) => !registry.includes(c))).toEqual(['PRT_NOT_A_CODE']);
  });
});

describe('PortraitError', () => {
  it('takes status and retryability from the registry and renders the HTTP body', () => {
    const err = new PortraitError('PRT_DEF_VERSION_CONFLICT', 'tag "x" is at version 2, not 1', { path: '/version', subject: 'x' });
    expect(err).toMatchObject({ code: 'PRT_DEF_VERSION_CONFLICT', statusCode: 409, retryable: false, path: '/version', subject: 'x' });
    expect(err.toJSON()).toEqual({ statusCode: 409, code: 'PRT_DEF_VERSION_CONFLICT', error: 'Conflict', message: 'tag "x" is at version 2, not 1', path: '/version' });
    expect(new PortraitError('PRT_STORE_UNAVAILABLE', 'down').retryable).toBe(true);
  });
});
