/**
 * The yardstick for bench/reserve: express 5 with the service's body parsing and a handler that
 * does no work. The ratio to it says how much of a checkout's cost is ours.
 */
import express from 'express';
import { AddressInfo } from 'node:net';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '256kb' }));
app.post('/v1/orders', (req, res) => {
  res.status(201).json({ id: 'bare', status: 'reserved', lines: req.body?.lines ?? [] });
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
