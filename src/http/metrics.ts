/**
 * Prometheus exposition through prom-client, one registry per app (tests run several apps in one
 * process). The small API the services use stays: counters and gauges with labels, durations, and
 * gauges filled from the database at scrape time; plus latency histograms per route and the size of
 * every batch the reservation engine commits.
 */
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

type Labels = Record<string, string>;

/** What the services hold on to: a labelled series to bump or set. */
export interface Series {
  inc(labels?: Labels, by?: number): void;
  set(labels: Labels, v: number): void;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000];

export class Metrics {
  readonly registry = new Registry();
  private readonly series = new Map<string, Counter | Gauge | Histogram>();
  private readonly collectors: (() => Promise<void>)[] = [];

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    // Tells apart the workers of `serve --workers N` when a scraper meets several behind one port.
    this.gauge('pos_process_info', 'This process').set({ pid: String(process.pid) }, 1);
  }

  counter(name: string, help: string): Series {
    return this.labelled(
      name,
      (labelNames) => new Counter({ name, help, labelNames, registers: [this.registry] }),
      'counter',
    );
  }

  gauge(name: string, help: string): Series {
    return this.labelled(
      name,
      (labelNames) => new Gauge({ name, help, labelNames, registers: [this.registry] }),
      'gauge',
    );
  }

  /** Records a duration in a histogram (name_bucket, name_sum, name_count). */
  observe(name: string, help: string, seconds: number, labels: Labels = {}, buckets = LATENCY_BUCKETS): void {
    const h = this.get(
      name,
      Object.keys(labels),
      (labelNames) => new Histogram({ name, help, labelNames, buckets, registers: [this.registry] }),
    ) as Histogram;
    h.observe(labels, seconds);
  }

  /** A gauge filled from the database at scrape time. */
  collect(fn: () => Promise<void>): void {
    this.collectors.push(fn);
  }

  /** Latency per route (the express route pattern, never the raw path: ids would explode the label set). */
  requestTimer(): RequestHandler {
    return (req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
        this.observe(
          'pos_http_request_seconds',
          'HTTP request latency by route',
          Number(process.hrtime.bigint() - started) / 1e9,
          { method: req.method, route, status: String(res.statusCode) },
        );
      });
      next();
    };
  }

  /** Feeds the reservation engine's batches into a size histogram and a duration histogram. */
  batchObserver(): (info: { name: string; size: number; seconds: number; fallback: boolean }) => void {
    return (info) => {
      this.observe(
        'pos_batch_size',
        'Requests committed per batch transaction',
        info.size,
        { batch: info.name },
        BATCH_BUCKETS,
      );
      this.observe('pos_batch_seconds', 'Batch transaction duration', info.seconds, { batch: info.name });
      if (info.fallback)
        this.counter('pos_batch_fallbacks_total', 'Batches retried one request at a time').inc({ batch: info.name });
    };
  }

  async render(): Promise<string> {
    for (const c of this.collectors) await c();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private labelled(name: string, make: (labelNames: string[]) => Counter | Gauge, kind: 'counter' | 'gauge'): Series {
    // prom-client fixes label names at creation; ours are known at the first use, so create then.
    return {
      inc: (labels: Labels = {}, by = 1) => {
        const s = this.get(name, Object.keys(labels), make);
        if (kind === 'counter') (s as Counter).inc(labels, by);
        else (s as Gauge).inc(labels, by);
      },
      set: (labels: Labels, v: number) => {
        const s = this.get(name, Object.keys(labels), make);
        if (kind === 'counter') throw new Error(`${name} is a counter; it cannot be set`);
        (s as Gauge).set(labels, v);
      },
    };
  }

  private get(
    name: string,
    labelNames: string[],
    make: (labelNames: string[]) => Counter | Gauge | Histogram,
  ): Counter | Gauge | Histogram {
    let s = this.series.get(name);
    if (!s) this.series.set(name, (s = make([...labelNames].sort())));
    return s;
  }
}
