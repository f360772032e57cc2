import { HttpModule } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { UpstreamCircuit } from './upstream-circuit';
import { UpstreamClient } from './upstream.client';
import { UpstreamMetrics } from './upstream.metrics';

/**
 * The paid upstream: `UpstreamClient.verify()` (retries and circuit breaker included),
 * the circuit state for readiness, and the upstream metrics registry.
 */
@Module({
  imports: [HttpModule.register({})],
  providers: [UpstreamClient, UpstreamCircuit, UpstreamMetrics],
  exports: [UpstreamClient, UpstreamCircuit, UpstreamMetrics],
})
export class UpstreamModule {}
