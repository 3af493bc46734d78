/**
 * The worker's telemetry (README: Metrics and traces).
 *
 * - Metrics: the SDK Core runtime's own Prometheus exporter, so the SDK's
 *   metrics and the hypervisor's (emitted through the SDK's metric meters,
 *   src/core/observability.ts) share one endpoint. The runtime is process-global
 *   and installed once, before anything connects.
 * - Traces: @temporalio/interceptors-opentelemetry's activity and client
 *   interceptors, its workflow span sink, and our workflow interceptor module
 *   (workflows/tracing.ts), all feeding one span processor per worker.
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import { Runtime, type ActivityInterceptorsFactory } from '@temporalio/worker';
import { HISTOGRAM_BUCKETS, TRACER_NAME } from '../src/core/observability';
import type { Config } from './config';

/**
 * Installs the process's SDK runtime, serving Prometheus metrics when
 * HV_METRICS_ADDRESS is set; otherwise leaves the SDK's default runtime alone.
 */
export function installRuntime(config: Pick<Config, 'metricsAddress'>): void {
  if (!config.metricsAddress) return;
  Runtime.install({
    telemetryOptions: {
      metrics: { prometheus: { bindAddress: config.metricsAddress, histogramBucketOverrides: HISTOGRAM_BUCKETS } },
    },
  });
}

/** How a worker traces. */
export interface WorkerTracing {
  /** Where finished spans go: a BatchSpanProcessor over an OTLP exporter, or in tests a SimpleSpanProcessor over an in-memory one. */
  spanProcessor: SpanProcessor;
  /** The `service.name` of the spans (default agent-hypervisor-worker). */
  serviceName?: string;
}

/** OTLP/HTTP tracing when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set (the exporter reads those itself), else none. */
export function tracingFromConfig(
  config: Pick<Config, 'otlpTracesEndpoint' | 'serviceName'>,
): WorkerTracing | undefined {
  if (!config.otlpTracesEndpoint) return undefined;
  return { spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()), serviceName: config.serviceName };
}

let contextInstalled = false;

/**
 * Activity spans find their parent in the trace headers and the active span
 * through the process's context manager and propagator: OpenTelemetry keeps
 * those global, so they are set once per process.
 */
function installOtelContext(): void {
  if (contextInstalled) return;
  contextInstalled = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** What a Worker needs to trace; the tracer provider is the worker's own, not global (a process may run several). */
export function tracingParts(tracing: WorkerTracing) {
  installOtelContext();
  const resource = new Resource({ 'service.name': tracing.serviceName ?? 'agent-hypervisor-worker' });
  const provider = new BasicTracerProvider({ resource });
  provider.addSpanProcessor(tracing.spanProcessor);
  const tracer = provider.getTracer(TRACER_NAME);
  const activity: ActivityInterceptorsFactory = (ctx) => ({
    inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }),
    outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
  });
  return {
    tracer,
    activityInterceptors: [activity],
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer })] },
    // Workflow spans are made in the sandbox and leave through this sink, which the worker never calls on replay.
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, resource) },
  };
}
