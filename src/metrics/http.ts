/**
 * The /metrics endpoint: an HTTP server (bound to 127.0.0.1 unless the config says otherwise) that
 * answers GET /metrics with a scrape of the registry in the Prometheus text format. Anything else is
 * 404 (405 for methods other than GET and HEAD). A failed scrape answers 500 with the error text.
 * listen() resolves once bound (port 0 picks a free port: see address()); close() stops accepting
 * and ends idle keep-alive connections.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './registry';

export class MetricsServer {
  private readonly server: http.Server;
  private readonly metrics: MetricsRegistry;

  private constructor(metrics: MetricsRegistry) {
    this.metrics = metrics;
    this.server = http.createServer((request, response) => void this.answer(request, response));
  }

  static async listen(metrics: MetricsRegistry, address: string, port: number): Promise<MetricsServer> {
    const server = new MetricsServer(metrics);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(port, address, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /** Where the server listens (the real port when 0 was asked). */
  address(): { address: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  private async answer(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = (request.url ?? '/').split('?')[0];
    if (url !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET and HEAD\n');
      return;
    }
    try {
      const body = await this.metrics.scrape();
      response.writeHead(200, { 'content-type': this.metrics.contentType });
      response.end(request.method === 'HEAD' ? undefined : body);
    } catch (error) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`scrape failed: ${(error as Error).message}\n`);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}
