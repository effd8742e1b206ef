/**
 * Metrics collected at scrape time. Nothing here is updated per packet: a family is a list of
 * samples that its collectors fill from the counters the workers already keep, each time a scrape
 * asks. prom-client renders the families (text format 0.0.4) beside its standard process_* and
 * nodejs_* metrics of the control thread.
 *
 * Registration (the datapath, meters, the slow path):
 *   const hits = metrics.counter('xdpts_meter_band_packets_total', 'Packets ...', ['meter', 'band']);
 *   metrics.addCollector('meters', [hits], () => { for (...) hits.set({ meter: '1', band: '0' }, n); });
 * A collector runs once per scrape, before rendering; it sets every sample of the families it owns
 * (families are emptied before each scrape, so a port or meter that went away simply disappears). A
 * collector that throws is logged by the caller's `onError` and its families left empty for that
 * scrape; the others still answer. Families are declared once, at registration: declaring a name twice
 * is a programming error (thrown). Collectors must be cheap: O(ports + workers + meters), never
 * O(flows): a scrape of a datapath with 1M flows stays under 50 ms.
 * Ownership: the registry owns the families it returns; callers keep handles to set samples.
 */
import { collectDefaultMetrics, Metric, Registry } from 'prom-client';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Sample {
  metricName?: string;
  labels: Labels;
  value: number;
}

/** One metric family: name, help, type, label names, and the samples of the current scrape. */
export class MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  /** Histograms only: the buckets' upper bounds (+Inf is added). */
  readonly buckets: readonly number[];
  readonly aggregator = 'sum';
  private samples: Sample[] = [];

  constructor(name: string, help: string, type: MetricType, labelNames: readonly string[], buckets: readonly number[] = []) {
    if (!NAME.test(name)) throw new TypeError(`metric name ${name}: not a Prometheus name`);
    if (type === 'counter' && !name.endsWith('_total')) throw new TypeError(`counter ${name}: a counter's name ends in _total`);
    if (type !== 'counter' && name.endsWith('_total')) throw new TypeError(`${type} ${name}: only counters end in _total`);
    for (const label of labelNames) {
      if (!LABEL.test(label) || label.startsWith('__') || label === 'le') throw new TypeError(`metric ${name}: bad label name ${label}`);
    }
    if (type === 'histogram' && (buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= buckets[i - 1]))) {
      throw new TypeError(`histogram ${name}: buckets must be a non-empty increasing list`);
    }
    this.name = name;
    this.help = help;
    this.type = type;
    this.labelNames = labelNames;
    this.buckets = buckets;
  }

  private check(labels: Labels): void {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((l) => typeof labels[l] === 'string')) {
      throw new TypeError(`metric ${this.name}: labels must be exactly ${this.labelNames.join(', ') || '(none)'}, got ${keys.join(', ') || '(none)'}`);
    }
  }

  /** A counter's or gauge's value for one label set, for this scrape. */
  set(labels: Labels, value: number): void {
    if (this.type === 'histogram') throw new TypeError(`histogram ${this.name}: use setHistogram`);
    this.check(labels);
    this.samples.push({ labels, value });
  }

  /**
   * A histogram for one label set, from per-bucket counts (not cumulative; counts[i] are the
   * observations <= buckets[i] and above the bucket before; counts[buckets.length], if given, those
   * above the last bound) and the sum of the observed values.
   */
  setHistogram(labels: Labels, counts: ArrayLike<number>, sum: number): void {
    if (this.type !== 'histogram') throw new TypeError(`${this.type} ${this.name}: use set`);
    this.check(labels);
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += counts[i];
      this.samples.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative });
    });
    cumulative += counts.length > this.buckets.length ? counts[this.buckets.length] : 0;
    this.samples.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
    this.samples.push({ metricName: `${this.name}_sum`, labels, value: sum });
    this.samples.push({ metricName: `${this.name}_count`, labels, value: cumulative });
  }

  clear(): void {
    this.samples = [];
  }

  /** What prom-client's Registry reads when it renders (its metric interface). */
  get(): { name: string; help: string; type: MetricType; values: Sample[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.samples, aggregator: this.aggregator };
  }
}

export interface Collector {
  name: string;
  collect: () => void;
  families: MetricFamily[];
}

export class MetricsRegistry {
  private readonly registry = new Registry();
  private readonly families = new Map<string, MetricFamily>();
  private readonly collectors: Collector[] = [];
  private readonly onError: (collector: string, error: Error) => void;

  constructor(options: { processMetrics?: boolean; onError?: (collector: string, error: Error) => void } = {}) {
    this.onError = options.onError ?? (() => {});
    // The control thread's own process_* and nodejs_* metrics (CPU, memory, event loop lag).
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private declare(family: MetricFamily): MetricFamily {
    if (this.families.has(family.name)) throw new TypeError(`metric ${family.name} is declared twice`);
    this.families.set(family.name, family);
    // prom-client renders any object with its metric interface (name, help, type, get()).
    this.registry.registerMetric(family as unknown as Metric);
    return family;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): MetricFamily {
    return this.declare(new MetricFamily(name, help, 'counter', labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): MetricFamily {
    return this.declare(new MetricFamily(name, help, 'gauge', labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): MetricFamily {
    return this.declare(new MetricFamily(name, help, 'histogram', labelNames, buckets));
  }

  /**
   * Adds a collector that sets the samples of `families` (declared on this registry) at each scrape.
   * Returns a function that removes the collector and its families (e.g. when a subsystem stops).
   */
  addCollector(name: string, families: MetricFamily[], collect: () => void): () => void {
    for (const family of families) {
      if (this.families.get(family.name) !== family) throw new TypeError(`metric ${family.name} is not declared on this registry`);
    }
    const collector: Collector = { name, collect, families };
    this.collectors.push(collector);
    return () => {
      const at = this.collectors.indexOf(collector);
      if (at < 0) return;
      this.collectors.splice(at, 1);
      for (const family of collector.families) {
        this.families.delete(family.name);
        this.registry.removeSingleMetric(family.name);
      }
    };
  }

  /** Runs every collector and renders the text exposition format. */
  async scrape(): Promise<string> {
    for (const family of this.families.values()) family.clear();
    for (const collector of this.collectors) {
      try {
        collector.collect();
      } catch (error) {
        for (const family of collector.families) family.clear();
        this.onError(collector.name, error as Error);
      }
    }
    return this.registry.metrics();
  }
}
