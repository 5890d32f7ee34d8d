/**
 * The yardstick for bench/reserve: express 5 with the service's body parsing and a handler that
 * does no work. The ratio to it says how much of a checkout's cost is ours. Served with
 * `app.listen` (express as it comes), or with `served` as the service serves its app
 * (src/http/server.ts: requests and responses made with the app's prototypes).
 */
import express from 'express';
import { AddressInfo } from 'node:net';
import { serverFor } from '../src/http/server';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '256kb' }));
app.post('/v1/orders', (req, res) => {
  res.status(201).json({ id: 'bare', status: 'reserved', lines: req.body?.lines ?? [] });
});
const served = process.argv.includes('served');
const server = (served ? serverFor(app) : app).listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
