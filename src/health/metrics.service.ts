import { Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { SecurityAlerts } from '../audit/security-alerts.service';
import { UpstreamMetrics } from '../upstream/upstream.metrics';
import { VerificationMetrics } from '../verification/verification.metrics';

/**
 * Prometheus metrics for `GET /metrics`: HTTP latency by route and status and
 * process metrics here; upstream and verification metrics from their modules'
 * own registries, merged at scrape time.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;

  constructor(
    private readonly upstream: UpstreamMetrics,
    private readonly verifications: VerificationMetrics,
    private readonly alerts: SecurityAlerts,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'idgate_' });
    this.httpDuration = new Histogram({
      name: 'idgate_http_request_duration_seconds',
      help: 'HTTP request latency by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
  }

  /** Express middleware: times every request; the route is the matched template, never the raw path (no ids, no PII). */
  httpMiddleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const stop = this.httpDuration.startTimer();
      res.on('finish', () => {
        const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
        stop({ method: req.method, route, status: String(res.statusCode) });
      });
      next();
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const merged = Registry.merge([
      this.registry,
      this.upstream.registry,
      this.verifications.registry,
      this.alerts.registry,
    ]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}
