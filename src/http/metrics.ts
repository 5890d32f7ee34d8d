/**
 * Prometheus exposition through prom-client, one registry per app (tests run several apps in one
 * process). The small API the services use stays: counters and gauges with labels, durations, and
 * gauges filled from the database at scrape time; plus latency histograms per route and the size of
 * every batch the reservation engine commits.
 *
 * Under `pos serve --workers N` one scrape answers for the whole cluster: the worker that takes the
 * scrape asks the primary, the primary asks every worker for its registry (getMetricsAsJSON, after its
 * scrape-time collectors ran) and merges them with prom-client's AggregatorRegistry.aggregate —
 * counters and histograms summed, gauges as each declares (`aggregator`).
 */
import cluster, { Worker } from 'node:cluster';
import type { RequestHandler } from 'express';
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  MetricObjectWithValues,
  MetricValue,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';

type Labels = Record<string, string>;

/** What the services hold on to: a labelled series to bump or set. */
export interface Series {
  inc(labels?: Labels, by?: number): void;
  set(labels: Labels, v: number): void;
}

/** How several workers' values of a gauge combine in a cluster-wide scrape (prom-client's aggregators). */
export type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

/** IPC between the workers and the primary of `serve --workers N` (see clusterMetricsPrimary). */
const SCRAPE = 'pos:metrics:scrape'; // worker → primary: one scrape came in
const COLLECT = 'pos:metrics:collect'; // primary → every worker: your registry, please
const PART = 'pos:metrics:part'; // worker → primary: its registry as JSON
const MERGED = 'pos:metrics:merged'; // primary → the scraped worker: the cluster's exposition
/** A worker that does not answer within this is left out of the scrape (it may be dying). */
const CLUSTER_SCRAPE_MS = 2000;

type Part = MetricObjectWithValues<MetricValue<string>>[];
interface Msg {
  type?: string;
  id?: number;
  metrics?: Part;
  text?: string;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000];

export class Metrics {
  readonly registry = new Registry();
  private readonly series = new Map<string, Counter | Gauge | Histogram>();
  private readonly collectors: (() => Promise<void>)[] = [];
  /** Set in a cluster worker: a scrape is answered with the whole cluster's metrics. */
  private clusterScrape: (() => Promise<string>) | null = null;

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

  /** `aggregator`: how workers' values combine in a cluster scrape (sum by default; max for a count read from the database). */
  gauge(name: string, help: string, opts: { aggregator?: Aggregator } = {}): Series {
    return this.labelled(
      name,
      (labelNames) =>
        new Gauge({ name, help, labelNames, registers: [this.registry], aggregator: opts.aggregator ?? 'sum' }),
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
    if (this.clusterScrape) return this.clusterScrape();
    return this.renderOwn();
  }

  /** This process's metrics alone. */
  async renderOwn(): Promise<string> {
    await this.runCollectors();
    return this.registry.metrics();
  }

  /** This process's metrics as prom-client JSON, for the cluster primary to merge. */
  async json(): Promise<Part> {
    await this.runCollectors();
    return (await this.registry.getMetricsAsJSON()) as Part;
  }

  /** Runs the scrape-time collectors (gauges filled from the database). */
  private async runCollectors(): Promise<void> {
    for (const c of this.collectors) await c();
  }

  /**
   * In a worker of `serve --workers N`: answers the primary's requests for this registry, and makes
   * render() (GET /metrics) the whole cluster's metrics, merged by the primary (clusterMetricsPrimary).
   */
  joinCluster(): void {
    if (!cluster.isWorker || !process.send) return;
    const waiting = new Map<number, (text: string) => void>();
    let seq = 0;
    process.on('message', (msg: Msg) => {
      if (msg?.type === COLLECT) {
        this.json().then(
          (metrics) => process.send?.({ type: PART, id: msg.id, metrics }),
          () => process.send?.({ type: PART, id: msg.id, metrics: [] }),
        );
      } else if (msg?.type === MERGED) {
        waiting.get(msg.id!)?.(msg.text ?? '');
        waiting.delete(msg.id!);
      }
    });
    this.clusterScrape = () =>
      new Promise<string>((resolve) => {
        const id = ++seq;
        // Without an answer from the primary, this process's own metrics are better than none.
        const timer = setTimeout(() => {
          waiting.delete(id);
          this.renderOwn().then(resolve, () => resolve(''));
        }, CLUSTER_SCRAPE_MS * 2);
        waiting.set(id, (text) => {
          clearTimeout(timer);
          resolve(text);
        });
        process.send!({ type: SCRAPE, id });
      });
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

/**
 * In the primary of `serve --workers N`: a worker's scrape is answered with every live worker's
 * registry merged by prom-client's AggregatorRegistry (a worker silent for CLUSTER_SCRAPE_MS is left out).
 */
export function clusterMetricsPrimary(): void {
  let seq = 0;
  const scrapes = new Map<number, { parts: Part[]; pending: Set<number>; finish(): void }>();
  cluster.on('message', (worker: Worker, msg: Msg) => {
    if (msg?.type === SCRAPE) {
      const id = ++seq;
      const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
      const scrape = {
        parts: [] as Part[],
        pending: new Set(live.map((w) => w.id)),
        finish: () => {
          if (!scrapes.delete(id)) return;
          clearTimeout(timer);
          const reply = (text: string) => {
            if (worker.isConnected()) worker.send({ type: MERGED, id: msg.id, text });
          };
          Promise.resolve()
            .then(() => AggregatorRegistry.aggregate(scrape.parts).metrics())
            .then(reply, () => reply(''));
        },
      };
      const timer = setTimeout(scrape.finish, CLUSTER_SCRAPE_MS);
      scrapes.set(id, scrape);
      for (const w of live) w.send({ type: COLLECT, id });
      if (live.length === 0) scrape.finish();
    } else if (msg?.type === PART) {
      const scrape = scrapes.get(msg.id!);
      if (!scrape) return;
      scrape.parts.push(msg.metrics ?? []);
      scrape.pending.delete(worker.id);
      if (scrape.pending.size === 0) scrape.finish();
    }
  });
}
