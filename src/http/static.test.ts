import express from 'express';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server } from 'node:http';
import { webPages } from './static';
import { notFoundRoute } from './errors';

async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const app = express();
  app.use(webPages(dir));
  app.use(notFoundRoute);
  const server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('the pages as served', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pos-web-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an unbuilt page is a 404 that says how to build it', async () => {
    const { url, server } = await serve(join(dir, 'nothing'));
    const r = await fetch(`${url}/lane?lane=lane-1`);
    expect(r.status).toBe(404);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('page_not_built');
    expect(body.error.message).toMatch(/npm run build:web/);
    server.close();
  });

  it('serves the page uncached, assets cached, and a missing asset as the JSON 404', async () => {
    mkdirSync(join(dir, 'lane'), { recursive: true });
    mkdirSync(join(dir, 'assets'), { recursive: true });
    writeFileSync(join(dir, 'lane', 'index.html'), '<!doctype html><title>lane</title>');
    writeFileSync(join(dir, 'assets', 'lane-abc.js'), 'console.log(1)');
    const { url, server } = await serve(dir);
    const page = await fetch(`${url}/lane?lane=lane-1`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const asset = await fetch(`${url}/assets/lane-abc.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toMatch(/immutable/);
    const missing = await fetch(`${url}/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
    server.close();
  });
});
