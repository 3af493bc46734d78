/**
 * Provisions what `npm run test:e2e` needs beyond `npm ci`, idempotently:
 *   - Debian's `chromium` package, when the browser is missing
 *     (apt-get update; apt-get install -y chromium — as root, or through sudo);
 *   - a Python virtualenv with the Temporal Python SDK and PyCA cryptography, when missing;
 *   - the Temporal CLI, when no copy exists (the same one-time build `npm test` does).
 * Prints what it finds and what it does. Usage: npx tsx scripts/provision-e2e.ts
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chromiumPath, CRYPTOGRAPHY_VERSION, ensurePythonVenv, findPythonVenv, TEMPORALIO_VERSION } from './e2eTools';
import { isExecutable } from '../worker/temporalCli';
import { ensureTemporalCli, findTemporalCli, temporalCliVersion } from '../worker/temporalCli';

const log = (line: string) => console.log(line);

function sh(command: string, args: string[]): void {
  log(`  $ ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with code ${r.status}`);
}

function installChromium(): void {
  const browser = chromiumPath();
  if (isExecutable(browser)) {
    log(`chromium: present at ${browser} (${execFileSync(browser, ['--version'], { encoding: 'utf8' }).trim()})`);
    return;
  }
  log(`chromium: missing at ${browser}; installing Debian's chromium package`);
  const isRoot = process.getuid?.() === 0;
  const prefix = isRoot ? [] : ['sudo', '-n'];
  if (!isRoot && spawnSync('sudo', ['-n', 'true']).status !== 0) {
    throw new Error('installing chromium needs root: run this script as root, or with passwordless sudo');
  }
  const run = (args: string[]) =>
    prefix.length ? sh(prefix[0]!, [...prefix.slice(1), ...args]) : sh(args[0]!, args.slice(1));
  run(['apt-get', 'update']);
  run(['apt-get', 'install', '-y', 'chromium']);
  if (!isExecutable(browser)) throw new Error(`apt-get installed chromium but ${browser} is still missing`);
  log(`chromium: installed ${execFileSync(browser, ['--version'], { encoding: 'utf8' }).trim()}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  installChromium();

  const existing = findPythonVenv();
  if (existing)
    log(
      `python: virtualenv with temporalio==${TEMPORALIO_VERSION} and cryptography==${CRYPTOGRAPHY_VERSION} present (${existing})`,
    );
  else log(`python: ready at ${await ensurePythonVenv(log)}`);

  const cli = findTemporalCli();
  if (cli) log(`temporal CLI: present at ${cli} (${temporalCliVersion(cli).split('\n')[0]})`);
  else log(`temporal CLI: built at ${await ensureTemporalCli(log)}`);

  log(`provisioned in ${Math.round((Date.now() - started) / 1000)} s`);
}

main().catch((err) => {
  console.error(`provision-e2e: ${(err as Error).message}`);
  process.exit(1);
});
