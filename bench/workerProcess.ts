/** One more bench worker process (bench/workers.ts, `--workers N`): the pair of workers for BENCH_WORKER, until SIGTERM. */
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { registerNoopHandler, runWorkerPair, type WorkerSpec } from './workers';

async function main(): Promise<void> {
  const raw = process.env.BENCH_WORKER;
  if (!raw) throw new Error('BENCH_WORKER is not set: this process is started by bench/workers.ts');
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
    shutdownSignals: [],
  });
  registerNoopHandler();
  const pair = await runWorkerPair(JSON.parse(raw) as WorkerSpec);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await pair.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
