// The cluster's HTTPS front as a client on this machine reaches it: https://ns-NAME.BASE/ on one
// node's public address, the certificate checked against the test cluster's own CA (the
// inventory's front_ca) — no certificate check is turned off anywhere. `ip` picks the node, as a
// DNS answer would.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import YAML from 'yaml';

/** The CA `cluster up` made (PEM), from the inventory it wrote. */
export function frontCa(inventoryFile: string): string {
  const inv = YAML.parse(readFileSync(inventoryFile, 'utf8'));
  const path = inv?.all?.vars?.front_ca;
  if (typeof path !== 'string') throw new Error(`${inventoryFile}: no front_ca (written by orama-provision cluster up)`);
  return readFileSync(path, 'utf8');
}

export interface FrontResponse { status: number; text: string; headers: Record<string, string | string[] | undefined>; json: <T = any>() => T }

/** A request to `url` (https://ns-NAME.BASE/path) sent to the front at `ip`. */
export function frontFetch(ca: string, ip: string, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<FrontResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: ip, port: Number(u.port || 443), servername: u.hostname, ca, method: init.method ?? 'GET',
      path: u.pathname + u.search, headers: { host: u.host, ...init.headers }, timeout: 15_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers, json: () => JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url} at ${ip}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** `fetch`-like access to one namespace through one node's front. */
export function frontOf(ca: string, base: string) {
  return (ip: string, path: string, init?: Parameters<typeof frontFetch>[3]) => frontFetch(ca, ip, `${base}${path}`, init);
}
