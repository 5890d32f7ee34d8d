import { Metrics } from './metrics';

describe('Metrics (prom-client)', () => {
  it('renders counters, gauges, duration histograms and batch sizes in the exposition format', async () => {
    const m = new Metrics();
    m.counter('pos_x_total', 'x').inc({ outcome: 'a' }, 2);
    m.counter('pos_x_total', 'x').inc({ outcome: 'a' });
    m.gauge('pos_held', 'held').set({ status: 'unknown' }, 7);
    m.observe('pos_q_seconds', 'q', 0.003, { to: 'terminal' });
    m.batchObserver()({ name: 'orders', size: 37, seconds: 0.004, fallback: false });
    const text = await m.render();
    expect(text).toMatch(/pos_x_total\{outcome="a"\} 3/);
    expect(text).toMatch(/pos_held\{status="unknown"\} 7/);
    expect(text).toMatch(/pos_q_seconds_bucket\{le="0.005",to="terminal"\} 1/);
    expect(text).toMatch(/pos_q_seconds_count\{to="terminal"\} 1/);
    expect(text).toMatch(/pos_batch_size_bucket\{le="32",batch="orders"\} 0/);
    expect(text).toMatch(/pos_batch_size_bucket\{le="64",batch="orders"\} 1/);
    expect(text).toMatch(/pos_batch_size_sum\{batch="orders"\} 37/);
  });

  it('keeps registries apart, so two apps in one process do not collide', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.counter('pos_same_total', 'same').inc();
    b.counter('pos_same_total', 'same').inc({}, 5);
    expect(await a.render()).toMatch(/pos_same_total 1/);
    expect(await b.render()).toMatch(/pos_same_total 5/);
  });

  it("with process metrics (as `serve` runs it): GC pauses by kind and the event loop's delay, besides our series", async () => {
    const m = new Metrics({ processMetrics: true });
    // Some garbage, and a turn of the event loop for the delay monitor.
    let junk: unknown[] = [];
    for (let i = 0; i < 200_000; i++) junk.push({ i, s: `x${i}` });
    junk = [];
    await new Promise((r) => setTimeout(r, 50));
    const text = await m.render();
    expect(text).toMatch(/^nodejs_gc_duration_seconds_count\{kind="minor"\} [1-9]/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \S+/m);
    expect(text).toMatch(/^process_cpu_seconds_total \S+/m);
    expect(text).toMatch(/^pos_process_info\{pid="\d+"\} 1/m);
    expect(junk).toEqual([]);
    expect(await new Metrics().render()).not.toMatch(/nodejs_gc_duration_seconds/);
  });
});
