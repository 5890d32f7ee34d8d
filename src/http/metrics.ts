/** A small Prometheus text registry: counters and gauges with labels, and summaries of durations. */
type Labels = Record<string, string>;

const key = (l: Labels) => Object.keys(l).sort().map((k) => `${k}="${String(l[k]).replace(/["\\\n]/g, '_')}"`).join(',');

class Series {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge') {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(labels: Labels, v: number): void {
    this.values.set(key(labels), v);
  }
}

export class Metrics {
  private readonly series = new Map<string, Series>();
  private readonly collectors: (() => Promise<void>)[] = [];

  counter(name: string, help: string): Series {
    return this.get(name, help, 'counter');
  }
  gauge(name: string, help: string): Series {
    return this.get(name, help, 'gauge');
  }
  /** Records a duration as _sum and _count, enough for an average rate in Prometheus. */
  observe(name: string, help: string, seconds: number, labels: Labels = {}): void {
    this.get(`${name}_sum`, help, 'counter').inc(labels, seconds);
    this.get(`${name}_count`, help, 'counter').inc(labels, 1);
  }
  /** A gauge filled from the database at scrape time. */
  collect(fn: () => Promise<void>): void {
    this.collectors.push(fn);
  }

  async render(): Promise<string> {
    for (const c of this.collectors) await c();
    const out: string[] = [];
    for (const s of this.series.values()) {
      out.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
      if (s.values.size === 0) out.push(`${s.name} 0`);
      for (const [k, v] of s.values) out.push(k ? `${s.name}{${k}} ${v}` : `${s.name} ${v}`);
    }
    return out.join('\n') + '\n';
  }

  private get(name: string, help: string, type: 'counter' | 'gauge'): Series {
    let s = this.series.get(name);
    if (!s) this.series.set(name, (s = new Series(name, help, type)));
    return s;
  }
}
