import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { environmentSettings } from '../../src/config/index.js';

/** The compiled CLI, run as users run it; `npm test` builds it first (pretest). */
export const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/** A file under test/cli/fixtures. */
export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** How a run of the CLI ended. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any Portrait setting, so the machine's own settings cannot leak into a test. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...Object.keys(environmentSettings), 'PORTRAIT_CONFIG', 'PORTRAIT_URL']) delete base[name];
  return { ...base, ...env };
}

/** Runs `portrait ARGS` with a clean Portrait environment plus `env`; kills it after `timeoutMs`. */
export function portrait(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portrait ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A `portrait serve` process on a free loopback port. */
export interface ServeProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Stops the server with SIGTERM (final checkpoint) and waits until it exited; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Starts `portrait serve --port 0 --data-dir DIR` and resolves once it serves. */
export function serve(dataDir: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServeProcess> {
  const child: ChildProcess = spawn(process.execPath, [cli, 'serve', '--port', '0', '--data-dir', dataDir], {
    env: cleanEnv({ PORTRAIT_FSYNC: 'none', PORTRAIT_PARTITIONS: '2', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async (stopTimeoutMs = 30_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop(1_000);
      reject(new Error(`portrait serve did not start within ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    const read = (d: string): void => {
      out += d;
      const m = /portrait serving (http:\/\/\S+) /.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ url: m[1]!, stop });
      }
    };
    child.stdout!.setEncoding('utf8').on('data', read);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`portrait serve exited before serving: ${out}`));
    });
  });
}
