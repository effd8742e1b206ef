import * as fs from 'node:fs';
import * as path from 'node:path';
import { argValue } from '../../src/rig/args';

const RESULTS_DIR = path.join(__dirname, '..', '..', '..', 'bench', 'results');

/**
 * Writes a benchmark's results as JSON to --out, else to bench/results/<name>-<date>.json (the
 * directory made if needed), prints where, and returns the path.
 */
export function writeResults(name: string, results: unknown): string {
  const out = argValue('out', path.join(RESULTS_DIR, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 2));
  console.log(`results: ${out}`);
  return out;
}
