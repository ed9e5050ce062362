import { readFileSync, writeFileSync } from 'node:fs';
import { PortraitError } from '../errors/index.js';

/** A usage error: the command line is wrong (missing argument, unreadable file). The CLI exits with code 2. */
export function usage(message: string): PortraitError {
  return new PortraitError('PRT_SERVING_BAD_REQUEST', `${message} (see portrait help)`);
}

/** Reads a text file named on the command line; a missing or unreadable one is a usage error, not a stack trace. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err: unknown) {
    throw usage(`cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Reads a JSON file named on the command line; one that is not JSON is `PRT_DEF_INVALID` at its root. */
export function readJson(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text);
  } catch (err: unknown) {
    throw new PortraitError('PRT_DEF_INVALID', `${path} is not valid JSON: ${(err as Error).message}`, { path: '/' });
  }
}

/** Writes a text file named on the command line; a failure is a usage error. */
export function writeText(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err: unknown) {
    throw usage(`cannot write ${path}: ${(err as Error).message}`);
  }
}
