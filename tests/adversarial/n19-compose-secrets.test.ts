/**
 * N19: docker-compose.yml takes its secrets from the operator's environment and publishes its ports on loopback
 * only — checked with the Compose Specification's own loader (tools/compose-check, via worker/composeCheck.ts),
 * without a Docker engine. The first run on a machine builds the checker (~80 s cold); later runs reuse it.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { ensureComposeCheck, loadComposeProject, type ComposeProject } from '../../worker/composeCheck';
import { COMPOSE_FILE, OPERATOR_ENV, PASSWORD_MESSAGE } from '../helpers/compose';

describe('N19: secrets from the environment, ports on loopback', function () {
  this.timeout(600_000); // a cold build of the checker

  let project: ComposeProject;
  const env = (name: string): Record<string, string> => {
    const service = project.services[name];
    assert.ok(service, `docker-compose.yml has no service ${name}`);
    const e = service.environment ?? {};
    for (const [k, v] of Object.entries(e)) assert.equal(typeof v, 'string', `${name}: ${k} has no value`);
    return e as Record<string, string>;
  };

  before(async () => {
    await ensureComposeCheck();
    project = await loadComposeProject(COMPOSE_FILE, { env: OPERATOR_ENV });
  });

  it('N19: refuses to render without POSTGRES_PASSWORD (unset or empty), naming the variable', async () => {
    await assert.rejects(
      loadComposeProject(COMPOSE_FILE, { env: { HV_TLS_DIR: OPERATOR_ENV.HV_TLS_DIR } }),
      PASSWORD_MESSAGE,
    );
    await assert.rejects(
      loadComposeProject(COMPOSE_FILE, { env: { HV_TLS_DIR: OPERATOR_ENV.HV_TLS_DIR, POSTGRES_PASSWORD: '' } }),
      PASSWORD_MESSAGE,
    );
    // Every use of the password is required, not only the first the loader happens to meet.
    const uses = fs.readFileSync(COMPOSE_FILE, 'utf8').match(/\$\{POSTGRES_PASSWORD[^}]*\}/g) ?? [];
    assert.ok(uses.length >= 4, `POSTGRES_PASSWORD is used ${uses.length} times`);
    for (const use of uses) assert.match(use, /^\$\{POSTGRES_PASSWORD:\?/, `${use} has a default or is optional`);
  });

  it('N19: takes the password the operator set, everywhere it is used', () => {
    assert.equal(env('postgresql').POSTGRES_PASSWORD, OPERATOR_ENV.POSTGRES_PASSWORD);
    assert.equal(env('temporal').POSTGRES_PWD, OPERATOR_ENV.POSTGRES_PASSWORD);
    assert.equal(env('temporal-schema').PGPASSWORD, OPERATOR_ENV.POSTGRES_PASSWORD);
    assert.ok(!fs.readFileSync(COMPOSE_FILE, 'utf8').includes(':-hypervisor'), 'a constant default password is back');
  });

  it('N19: publishes no port on 0.0.0.0 (or any interface): every one on 127.0.0.1 unless HV_BIND_ADDRESS says otherwise', async () => {
    const hosts = (p: ComposeProject) =>
      Object.entries(p.services).flatMap(([name, s]) =>
        (s.ports ?? []).map((port) => [`${name}:${port.published}`, port.host_ip] as const),
      );
    const published = hosts(project);
    assert.equal(published.length, 4);
    for (const [port, ip] of published)
      assert.equal(ip, '127.0.0.1', `${port} is published on ${ip ?? 'every interface'}`);
    const chosen = hosts(
      await loadComposeProject(COMPOSE_FILE, { env: { ...OPERATOR_ENV, HV_BIND_ADDRESS: '10.1.2.3' } }),
    );
    assert.deepEqual(
      chosen.map(([, ip]) => ip),
      ['10.1.2.3', '10.1.2.3', '10.1.2.3', '10.1.2.3'],
    );
  });
});
