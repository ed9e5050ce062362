import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The HTTP baseline: a bare `node:http` server on the same routes the load
 * clients use, doing the least a real server must. `POST /v1/events` reads the
 * NDJSON body, JSON-parses every line and counts events per `user_id` in a
 * Map; `GET /v1/profiles/:id` answers from a Map of prepared JSON bodies, or
 * with a one-tag body for keys it counted events of (the probes of the latency
 * client), or 404.
 */
export interface BareServer {
  readonly url: string;
  readonly events: number;
  close(): Promise<void>;
}

export async function startBareServer(profiles: ReadonlyMap<string, Buffer> = new Map()): Promise<BareServer> {
  const counts = new Map<string, number>();
  let events = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url.startsWith('/v1/events')) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const lines = Buffer.concat(chunks).toString('utf8').split('\n');
        let accepted = 0;
        for (const line of lines) {
          if (line.length === 0) continue;
          const e = JSON.parse(line) as { user_id: string };
          counts.set(e.user_id, (counts.get(e.user_id) ?? 0) + 1);
          accepted++;
        }
        events += accepted;
        const body = JSON.stringify(url.includes('wait=true') ? { accepted, rejected: 0, visible: true } : { accepted, rejected: 0 });
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    if (req.method === 'GET' && url.startsWith('/v1/profiles/')) {
      const q = url.indexOf('?');
      const id = decodeURIComponent(url.slice('/v1/profiles/'.length, q === -1 ? undefined : q));
      let body = profiles.get(id);
      if (body === undefined) {
        const n = counts.get(id);
        if (n !== undefined) body = Buffer.from(JSON.stringify({ id, attributes: {}, tags: { buy_count_total: { value: n, updatedAt: null, version: 1 } } }));
      }
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
        res.end('{"statusCode":404}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
      res.end(body);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get events() {
      return events;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
