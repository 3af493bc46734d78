/**
 * docker-compose.yml, checked without a Docker engine: the Compose
 * Specification's own loader (tools/compose-check, via worker/composeCheck.ts)
 * must accept it — and reject broken copies — and its normalized project must
 * agree with the native cluster (worker/cluster.ts) on every image, port,
 * variable and command.
 *
 * The first run on a machine builds the checker (~80 s cold, see
 * worker/composeCheck.ts); later runs reuse it. No Temporal server is needed.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../worker/config';
import {
  CLUSTER_CERTS,
  CLUSTER_CONFIG_DIR,
  CLUSTER_CONFIG_ENV,
  CLUSTER_CONFIG_ROOT,
  CLUSTER_DATABASES,
  CLUSTER_HISTORY_SHARDS,
  CLUSTER_SERVER_NAME,
  CLUSTER_RETENTION_DAYS,
  CLUSTER_SCHEMAS,
  DYNAMIC_CONFIG_FILE,
  SERVER_PORT_VARS,
  SQL_PLUGIN,
  clusterServerEnv,
} from '../../worker/cluster';
import {
  ensureComposeCheck,
  loadComposeProject,
  type ComposeProject,
  type ComposeService,
} from '../../worker/composeCheck';
import { goBinary, goEnv } from '../../worker/goBuild';
import { POSTGRES_MAJOR } from '../../worker/postgres';
import { TEMPORAL_CLI_VERSION, TEMPORAL_UI_VERSION } from '../../worker/temporalCli';
import { POSTGRES_SCHEMA_SUBDIR, TEMPORAL_SERVER_SOURCE, TEMPORAL_SERVER_VERSION } from '../../worker/temporalServer';
import { DEFAULT_TASK_QUEUE } from '../../src/client';
import { AUDIT_DATABASE_URL_VAR } from '../../src/store';
import { SEARCH_ATTRIBUTES } from '../../src/contract/searchAttributes';
import { COMPOSE_FILE, OPERATOR_ENV, TLS_MESSAGE } from '../helpers/compose';

const SERVER_TEMPLATE = path.join(CLUSTER_CONFIG_ROOT, CLUSTER_CONFIG_DIR, `${CLUSTER_CONFIG_ENV}.yaml`);

/**
 * Worker variables that are read by code on other branches, not yet by
 * anything worker/main.ts imports: HV_METRICS_ADDRESS (host:port of the
 * worker's Prometheus endpoint, /metrics) and OpenTelemetry's standard two.
 */
const WORKER_VARS_PENDING = ['HV_METRICS_ADDRESS', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME'];

/**
 * The project's files that `entry` imports, transitively (relative imports),
 * and every `process.env.NAME` (or `process.env[CONST]` with `CONST = 'NAME'`) in them.
 */
function importedFrom(entry: string): { files: Set<string>; env: Set<string> } {
  const names = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]!);
    for (const m of text.matchAll(/process\.env\[([A-Z][A-Z0-9_]*)\]/g)) {
      const constant = new RegExp(`\\b${m[1]}\\s*=\\s*'([A-Z][A-Z0-9_]*)'`).exec(text);
      if (constant) names.add(constant[1]!);
    }
    for (const m of text.matchAll(/(?:from\s+|require(?:\.resolve)?\()'(\.{1,2}\/[^']+)'/g)) {
      const base = path.resolve(path.dirname(file), m[1]!);
      const found = [`${base}.ts`, path.join(base, 'index.ts'), base].find(
        (f) => fs.existsSync(f) && fs.statSync(f).isFile(),
      );
      if (found?.endsWith('.ts')) visit(found);
    }
  };
  visit(entry);
  return { files: seen, env: names };
}

/** True when .dockerignore keeps `file` (relative to the project) out of the build context: its plain names and `*.ext` lines. */
function dockerIgnores(lines: string[], file: string): boolean {
  return lines.some((line) =>
    line.startsWith('*.') ? file.endsWith(line.slice(1)) : file === line || file.startsWith(`${line}/`),
  );
}

/** The variables a server config template reads, with the default each one has there (if any). */
function templateVars(text: string): Map<string, string | undefined> {
  const vars = new Map<string, string | undefined>();
  for (const m of text.matchAll(/\benv\s+"([A-Z][A-Z0-9_]*)"/g)) vars.set(m[1]!, undefined);
  for (const m of text.matchAll(/default\s+"([^"]*)"\s+\(env\s+"([A-Z][A-Z0-9_]*)"\)/g)) vars.set(m[2]!, m[1]!);
  return vars;
}

const tag = (image: string | undefined) => image?.slice(image.lastIndexOf(':') + 1);
const script = (s: ComposeService) => [...(s.entrypoint ?? []), ...(s.command ?? [])].join('\n');

describe('docker-compose.yml', function () {
  this.timeout(600_000); // a cold build of the checker

  let project: ComposeProject;
  const service = (name: string): ComposeService => {
    const s = project.services[name];
    assert.ok(s, `docker-compose.yml has no service ${name}`);
    return s;
  };
  const env = (name: string): Record<string, string> => {
    const e = service(name).environment ?? {};
    for (const [k, v] of Object.entries(e)) assert.equal(typeof v, 'string', `${name}: ${k} has no value`);
    return e as Record<string, string>;
  };
  const workers = () => Object.entries(project.services).filter(([, s]) => s.build?.context === PROJECT_ROOT);

  before(async () => {
    await ensureComposeCheck();
    project = await loadComposeProject(COMPOSE_FILE, { env: OPERATOR_ENV });
  });

  describe('the Compose Specification loader', () => {
    it('accepts docker-compose.yml as the project agent-hypervisor with its seven services', () => {
      assert.equal(project.name, 'agent-hypervisor');
      assert.deepEqual(Object.keys(project.services).sort(), [
        'postgresql',
        'temporal',
        'temporal-schema',
        'temporal-setup',
        'temporal-ui',
        'worker-1',
        'worker-2',
      ]);
    });

    // Each copy differs from the real file by one edit; the loader must name it.
    const broken: Array<[string, string, string, RegExp]> = [
      [
        'an unknown key',
        '\n  temporal:\n',
        '\n  temporal:\n    restart_when: never\n',
        // The schema validator's words (compose-go v2.16.2) for a key services do not allow.
        /validating .*docker-compose\.yml: services\.temporal\.restart_when false schema/,
      ],
      ['a port that is no number', ':8080:8080"', ':8080:http"', /Invalid containerPort: http/],
      [
        'depends_on a missing service',
        'temporal-setup: { condition: service_completed_successfully }',
        'temporal-init: { condition: service_completed_successfully }',
        /depends on undefined service "?temporal-init"?/,
      ],
      [
        'a variable that is required and unset',
        '${POSTGRES_PASSWORD:?',
        '${HV_UNSET_PASSWORD:?must be set}${POSTGRES_PASSWORD:?',
        /required variable HV_UNSET_PASSWORD is missing a value: must be set/,
      ],
    ];
    for (const [what, from, to, message] of broken) {
      it(`rejects a copy with ${what}, with the loader's message`, async () => {
        const text = fs.readFileSync(COMPOSE_FILE, 'utf8');
        assert.ok(
          text.includes(from),
          `the edit for ${what} no longer applies: docker-compose.yml has no ${JSON.stringify(from)}`,
        );
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-compose-'));
        try {
          const copy = path.join(dir, 'docker-compose.yml');
          fs.writeFileSync(copy, text.replace(from, to));
          await assert.rejects(
            loadComposeProject(copy, { projectDirectory: PROJECT_ROOT, env: OPERATOR_ENV }),
            message,
          );
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });

  describe('issue 24: mutual TLS, each container with its own certificate', () => {
    it('issue 24: refuses to render without HV_TLS_DIR (unset or empty), every use required', async () => {
      await assert.rejects(loadComposeProject(COMPOSE_FILE, { env: { POSTGRES_PASSWORD: 'x' } }), TLS_MESSAGE);
      await assert.rejects(
        loadComposeProject(COMPOSE_FILE, { env: { POSTGRES_PASSWORD: 'x', HV_TLS_DIR: '' } }),
        TLS_MESSAGE,
      );
      await assert.rejects(
        loadComposeProject(COMPOSE_FILE),
        /required variable (POSTGRES_PASSWORD|HV_TLS_DIR) is missing a value/,
      );
      const uses = fs.readFileSync(COMPOSE_FILE, 'utf8').match(/\$\{HV_TLS_DIR[^}]*\}/g) ?? [];
      assert.ok(uses.length >= 8, `HV_TLS_DIR is used ${uses.length} times`);
      for (const use of uses) assert.match(use, /^\$\{HV_TLS_DIR:\?/, `${use} has a default or is optional`);
    });

    // Which certificate each client of the frontend presents (deploy/temporal-server/policy.go roles).
    const clients: Record<string, string> = {
      'temporal-setup': CLUSTER_CERTS.worker,
      'temporal-ui': CLUSTER_CERTS.ui,
      'worker-1': CLUSTER_CERTS.worker,
      'worker-2': CLUSTER_CERTS.worker,
    };
    const tlsMounts = (name: string) =>
      (service(name).volumes ?? []).filter(
        (m) => m.type === 'bind' && m.source?.startsWith(`${OPERATOR_ENV.HV_TLS_DIR}/`),
      );

    it('mounts into each client only its own certificate and key and the CA, read-only; ca.key nowhere', () => {
      for (const [name, cert] of Object.entries(clients)) {
        const files = tlsMounts(name)
          .map((m) => path.basename(m.source!))
          .sort();
        assert.deepEqual(files, ['ca.pem', `${cert}.key`, `${cert}.pem`], name);
        for (const m of tlsMounts(name)) assert.equal(m.read_only, true, `${name}: ${m.target}`);
      }
      for (const [name] of Object.entries(project.services)) {
        for (const m of service(name).volumes ?? [])
          assert.ok(!m.source?.endsWith('/ca.key'), `${name} gets the CA's key`);
      }
    });

    it("points each client at its mounted files: the hypervisor's and the CLI's TEMPORAL_TLS_*, the UI image's TEMPORAL_TLS_*", () => {
      const target = (name: string, file: string) =>
        tlsMounts(name).find((m) => path.basename(m.source!) === file)?.target;
      for (const [name, cert] of Object.entries(clients)) {
        const e = env(name);
        if (name === 'temporal-ui') {
          assert.equal(e.TEMPORAL_TLS_CERT, target(name, `${cert}.pem`));
          assert.equal(e.TEMPORAL_TLS_KEY, target(name, `${cert}.key`));
          assert.equal(e.TEMPORAL_TLS_CA, target(name, 'ca.pem'));
          assert.equal(e.TEMPORAL_TLS_ENABLE_HOST_VERIFICATION, 'true');
        } else {
          assert.equal(e.TEMPORAL_TLS_CLIENT_CERT_PATH, target(name, `${cert}.pem`), name);
          assert.equal(e.TEMPORAL_TLS_CLIENT_KEY_PATH, target(name, `${cert}.key`), name);
          assert.equal(e.TEMPORAL_TLS_SERVER_CA_CERT_PATH, target(name, 'ca.pem'), name);
        }
        assert.equal(e.TEMPORAL_TLS_SERVER_NAME, CLUSTER_SERVER_NAME, name);
      }
    });

    it("keeps the README's certificate folder (.tls, with ca.key) and .env out of the workers' image and out of git", () => {
      const ignore = fs
        .readFileSync(path.join(PROJECT_ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
      for (const file of ['.tls/ca.key', '.tls/hv-worker.key', '.env'])
        assert.ok(dockerIgnores(ignore, file), `.dockerignore lets ${file} into the image`);
      assert.match(fs.readFileSync(path.join(PROJECT_ROOT, '.gitignore'), 'utf8'), /^\.tls\/$/m);
    });

    it("checks the server's health over mutual TLS, with a certificate the server has", () => {
      const test = service('temporal').healthcheck?.test ?? [];
      const flag = (f: string) => test[test.indexOf(f) + 1];
      const mounted = new Set((service('temporal').volumes ?? []).map((m) => m.target));
      for (const f of ['--tls-cert-path', '--tls-key-path', '--tls-ca-path'])
        assert.ok(mounted.has(flag(f)!), `${f} ${flag(f)} is not mounted`);
      assert.equal(flag('--tls-server-name'), CLUSTER_SERVER_NAME);
    });
  });

  describe('matches the native cluster (worker/cluster.ts)', () => {
    const template = () => templateVars(fs.readFileSync(SERVER_TEMPLATE, 'utf8'));
    // The native server's environment, with placeholder ports: its names and fixed values.
    const native = clusterServerEnv(0, Object.fromEntries(SERVER_PORT_VARS.map((v) => [v, '0'])), '/tls');

    it('runs the same releases: server, admin tools, Web UI, PostgreSQL', () => {
      const server = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
      // The server is the native cluster's own build (deploy/temporal-server), in Temporal's image of that release.
      const build = service('temporal').build;
      assert.equal(build?.context, TEMPORAL_SERVER_SOURCE);
      const dockerfile = fs.readFileSync(path.join(build.context, build.dockerfile ?? 'Dockerfile'), 'utf8');
      assert.deepEqual([...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]).pop(), `temporalio/server:${server}`);
      const goMod = fs.readFileSync(path.join(TEMPORAL_SERVER_SOURCE, 'go.mod'), 'utf8');
      assert.match(
        goMod,
        new RegExp(`^\\s*go\\.temporal\\.io/server ${TEMPORAL_SERVER_VERSION.replace(/\./g, '\\.')}$`, 'm'),
      );
      const goVersion = /^go (\d+\.\d+)/m.exec(goMod)?.[1];
      assert.match(
        dockerfile,
        new RegExp(`^FROM golang:${goVersion}-`, 'm'),
        "the build stage's Go is not the go.mod's",
      );
      assert.equal(service('temporal').image, `agent-hypervisor-temporal:${server}`);
      // The admin tools carry the SQL tool and the schemas of the same server release.
      for (const name of ['temporal-schema', 'temporal-setup']) {
        assert.match(
          service(name).image ?? '',
          new RegExp(`^temporalio/admin-tools:${server.replace(/\./g, '\\.')}-`),
          name,
        );
      }
      assert.equal(service('temporal-ui').image, `temporalio/ui:${TEMPORAL_UI_VERSION}`);
      assert.equal(service('postgresql').image, `postgres:${POSTGRES_MAJOR}`);
    });

    it('TEMPORAL_UI_VERSION is the UI server the pinned Temporal CLI requires', () => {
      // The CLI's go.mod is in the Go module cache once the CLI or the checker's go was used here;
      // without it, the constant is what the compose file must use (checked above).
      const mod = path.join(
        goEnv(goBinary('go'), 'GOMODCACHE'),
        'cache',
        'download',
        'github.com',
        'temporalio',
        'cli',
        '@v',
        `${TEMPORAL_CLI_VERSION}.mod`,
      );
      if (fs.existsSync(mod)) {
        const required = /github\.com\/temporalio\/ui-server\/v2 v(\S+)/.exec(fs.readFileSync(mod, 'utf8'));
        assert.equal(required?.[1], TEMPORAL_UI_VERSION, `${mod} requires another ui-server`);
      }
      assert.equal(tag(service('temporal-ui').image), TEMPORAL_UI_VERSION);
    });

    it('mounts deploy/temporal read-only and starts the server on it as the native cluster does', () => {
      const s = service('temporal');
      const mount = (s.volumes ?? []).find(
        (v) => v.type === 'bind' && v.source === path.join(CLUSTER_CONFIG_ROOT, CLUSTER_CONFIG_DIR),
      );
      assert.ok(mount, 'the server does not mount ./deploy/temporal');
      assert.equal(mount.read_only, true);
      const argv = s.entrypoint ?? [];
      const flag = (name: string) => argv[argv.indexOf(name) + 1];
      assert.equal(argv[0], 'temporal-server');
      assert.equal(argv.at(-1), 'start');
      assert.ok(!argv.includes('--allow-no-auth'), 'the server runs without authorization');
      // --root/--config name the mounted folder; --env picks deploy/temporal/cluster.yaml in it.
      assert.equal(path.posix.join(flag('--root')!, flag('--config')!), mount.target);
      assert.equal(flag('--env'), CLUSTER_CONFIG_ENV);
      assert.ok(fs.existsSync(SERVER_TEMPLATE));
    });

    it('sets only variables deploy/temporal/cluster.yaml reads, and every one the native server gets', () => {
      const compose = env('temporal');
      const known = template();
      for (const name of Object.keys(compose))
        assert.ok(known.has(name), `the server config template does not read ${name}`);
      for (const name of Object.keys(native)) assert.ok(name in compose, `the compose server lacks ${name}`);
    });

    it('gives the server the same values, or the documented container equivalents', () => {
      const compose = env('temporal');
      const defaults = template();
      const postgres = env('postgresql');
      const mount = service('temporal').volumes!.find((v) => v.type === 'bind')!;
      // Every native variable has its rule here: a new one fails until it is decided.
      const rules: Record<string, (value: string) => void> = {
        POSTGRES_USER: (v) => assert.equal(v, native.POSTGRES_USER),
        DBNAME: (v) => assert.equal(v, CLUSTER_DATABASES.temporal),
        VISIBILITY_DBNAME: (v) => assert.equal(v, CLUSTER_DATABASES.visibility),
        NUM_HISTORY_SHARDS: (v) => assert.equal(v, String(CLUSTER_HISTORY_SHARDS)),
        // Four services in one container find each other on loopback, as natively.
        TEMPORAL_BROADCAST_ADDRESS: (v) => assert.equal(v, native.TEMPORAL_BROADCAST_ADDRESS),
        // Host-specific: the postgresql service on its own port, reached over the network with a password.
        POSTGRES_SEEDS: (v) => assert.equal(v, 'postgresql'),
        DB_PORT: (v) => assert.equal(v, '5432'),
        POSTGRES_PWD: (v) => assert.equal(v, postgres.POSTGRES_PASSWORD),
        // History, matching and the system worker check no caller: loopback only, as natively.
        BIND_ON_IP: (v) => assert.equal(v, native.BIND_ON_IP),
        // The certificates, mounted file by file.
        HV_TLS_DIR: (v) => {
          const mounted = (service('temporal').volumes ?? []).filter(
            (m) => m.type === 'bind' && m.target.startsWith(`${v}/`),
          );
          const files = mounted.map((m) => path.posix.basename(m.target)).sort();
          assert.deepEqual(files, [
            'ca.pem',
            'hv-temporal-system.key',
            'hv-temporal-system.pem',
            'server.key',
            'server.pem',
          ]);
          for (const m of mounted) {
            assert.equal(m.source, path.join(OPERATOR_ENV.HV_TLS_DIR, path.posix.basename(m.target)));
            assert.equal(m.read_only, true, m.target);
          }
        },
        // The same file, through the mount.
        DYNAMIC_CONFIG_FILE_PATH: (v) => {
          assert.ok(v.startsWith(`${mount.target}/`), v);
          assert.equal(path.join(mount.source!, path.posix.relative(mount.target, v)), DYNAMIC_CONFIG_FILE);
        },
        // The native cluster takes free ports; the containers state the template's defaults.
        ...Object.fromEntries(
          SERVER_PORT_VARS.map((name) => [name, (v: string) => assert.equal(v, defaults.get(name), name)]),
        ),
      };
      for (const name of Object.keys(native)) {
        assert.ok(rules[name], `no rule for the native server's ${name}`);
        rules[name]!(compose[name]!);
      }
      // Only the frontend faces the containers' network.
      assert.equal(compose.FRONTEND_BIND_ON_IP, '0.0.0.0');
      assert.equal(postgres.POSTGRES_USER, compose.POSTGRES_USER);
    });

    it('sets up the schemas as setUpSchemas does, and creates the audit store database', () => {
      const s = script(service('temporal-schema'));
      const dbs = /for db in ([^;]+);/.exec(s)?.[1]?.split(/\s+/).filter(Boolean).sort();
      assert.deepEqual(dbs, Object.values(CLUSTER_DATABASES).sort());
      const server = env('temporal');
      assert.ok(
        s.includes(
          `sql_tool() { temporal-sql-tool --plugin ${SQL_PLUGIN} --endpoint ${server.POSTGRES_SEEDS} --port ${server.DB_PORT} --user ${server.POSTGRES_USER} `,
        ),
        'the SQL tool is not called as natively',
      );
      for (const [db, dir] of CLUSTER_SCHEMAS) {
        assert.ok(s.includes(`has_schema ${db} || sql_tool ${db} setup-schema -v 0.0\n`), `${db}: no setup-schema`);
        assert.ok(
          s.includes(
            `sql_tool ${db} update-schema -d ${path.posix.join('/etc/temporal', POSTGRES_SCHEMA_SUBDIR, dir, 'versioned')}\n`,
          ),
          `${db}: no update-schema from ${dir}`,
        );
      }
      assert.equal(env('temporal-schema').PGPASSWORD, env('postgresql').POSTGRES_PASSWORD);
    });

    it('registers the namespace with the same retention and the search attributes of src/contract/searchAttributes.ts', () => {
      const s = script(service('temporal-setup'));
      const address = `temporal:${env('temporal').FRONTEND_GRPC_PORT}`;
      for (const m of s.matchAll(/--address (\S+)/g)) assert.equal(m[1], address);
      for (const m of s.matchAll(/--namespace (\S+)/g)) assert.equal(m[1], env('worker-1').TEMPORAL_NAMESPACE);
      assert.ok(s.includes('temporal operator namespace create'), 'no namespace create');
      assert.equal(/--retention (\d+)d\b/.exec(s)?.[1], String(CLUSTER_RETENTION_DAYS));
      const created = Object.fromEntries(
        [...s.matchAll(/--name (\S+) --type (\S+)/g)].map((m) => [m[1]!, m[2]!.toLowerCase()]),
      );
      // The CLI matches type names without case (KeywordList is KEYWORD_LIST).
      const expected = Object.fromEntries(
        SEARCH_ATTRIBUTES.map((k) => [k.name, k.type.replace(/_/g, '').toLowerCase()]),
      );
      assert.deepEqual(created, expected);
    });

    it("runs exactly two workers, with package.json's worker command, on the shared task queue", () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      const command = pkg.scripts.worker!.split(' ');
      const ws = workers();
      assert.deepEqual(
        ws.map(([name]) => name),
        ['worker-1', 'worker-2'],
      );
      for (const [name, s] of ws) {
        assert.equal(s.build?.dockerfile, 'Dockerfile', name);
        assert.ok(!s.deploy?.replicas || s.deploy.replicas === 1, `${name} has replicas`);
        assert.deepEqual(s.command, command, name);
        assert.equal(env(name).TEMPORAL_ADDRESS, `temporal:${env('temporal').FRONTEND_GRPC_PORT}`);
        assert.equal(env(name).HV_TASK_QUEUE, DEFAULT_TASK_QUEUE);
      }
      // The image's own default is the same command.
      const cmd = /^CMD (\[.*\])$/m.exec(fs.readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8'))?.[1];
      assert.deepEqual(JSON.parse(cmd ?? 'null'), command);
    });

    it("builds the workers' image with every file the worker imports", () => {
      const ignore = fs
        .readFileSync(path.join(PROJECT_ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
      const { files } = importedFrom(path.join(PROJECT_ROOT, 'worker', 'main.ts'));
      assert.ok(files.size > 20, `the import walk found only ${files.size} files`);
      for (const file of [...files]
        .map((f) => path.relative(PROJECT_ROOT, f))
        .concat('package.json', 'package-lock.json', 'tsconfig.json')) {
        assert.ok(!dockerIgnores(ignore, file), `.dockerignore leaves ${file} out of the image`);
      }
    });

    it('gives the workers only variables the worker reads', () => {
      const read = importedFrom(path.join(PROJECT_ROOT, 'worker', 'main.ts')).env;
      // The walk finds what it must, or it proves nothing.
      for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'HV_TASK_QUEUE', AUDIT_DATABASE_URL_VAR])
        assert.ok(read.has(name), name);
      for (const [name] of workers()) {
        for (const key of Object.keys(env(name))) {
          assert.ok(read.has(key) || WORKER_VARS_PENDING.includes(key), `${name}: the worker reads no ${key}`);
        }
      }
    });

    it("points the workers' audit store at hv_audit on the postgresql service", () => {
      const postgres = env('postgresql');
      for (const [name] of workers()) {
        const url = new URL(env(name)[AUDIT_DATABASE_URL_VAR]!);
        assert.equal(url.protocol, 'postgres:');
        assert.equal(url.hostname, 'postgresql');
        assert.match(service(url.hostname).image ?? '', /^postgres:/);
        assert.equal(url.port, '5432');
        assert.equal(url.pathname, `/${CLUSTER_DATABASES.audit}`);
        assert.equal(url.username, postgres.POSTGRES_USER);
        assert.equal(decodeURIComponent(url.password), postgres.POSTGRES_PASSWORD);
      }
    });

    it('publishes only the documented ports: frontend 7233, UI 8080, worker metrics 9464 and 9465', () => {
      const published = Object.entries(project.services).flatMap(([name, s]) =>
        (s.ports ?? []).map((p) => [name, p.published, p.target] as const),
      );
      assert.deepEqual(published.map(([name, p]) => `${name}:${p}`).sort(), [
        'temporal-ui:8080',
        'temporal:7233',
        'worker-1:9464',
        'worker-2:9465',
      ]);
      for (const [name, , target] of published) {
        const expected =
          {
            temporal: env('temporal').FRONTEND_GRPC_PORT,
            'temporal-ui': env('temporal-ui').TEMPORAL_UI_PORT,
          }[name] ?? env(name).HV_METRICS_ADDRESS?.split(':').pop();
        assert.equal(String(target), expected, `${name} publishes a port it does not listen on`);
      }
      assert.equal(env('temporal-ui').TEMPORAL_ADDRESS, `temporal:${env('temporal').FRONTEND_GRPC_PORT}`);
    });

    it('starts in order: PostgreSQL healthy → schemas → server healthy → namespace → workers', () => {
      const after = (name: string) =>
        Object.fromEntries(Object.entries(service(name).depends_on ?? {}).map(([d, c]) => [d, c.condition]));
      assert.deepEqual(after('temporal-schema'), { postgresql: 'service_healthy' });
      assert.deepEqual(after('temporal'), { 'temporal-schema': 'service_completed_successfully' });
      assert.deepEqual(after('temporal-setup'), { temporal: 'service_healthy' });
      assert.deepEqual(after('temporal-ui'), { temporal: 'service_healthy' });
      for (const [name] of workers()) {
        assert.deepEqual(after(name), {
          postgresql: 'service_healthy',
          'temporal-schema': 'service_completed_successfully',
          'temporal-setup': 'service_completed_successfully',
        });
      }
      // Every awaited health has a check, and every awaited completion is a one-shot that is not restarted.
      for (const s of Object.values(project.services)) {
        for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
          if (condition === 'service_healthy')
            assert.ok(service(dep).healthcheck?.test?.length, `${dep} has no healthcheck`);
          if (condition === 'service_completed_successfully')
            assert.ok([undefined, 'no'].includes(service(dep).restart as string | undefined), `${dep} restarts`);
        }
      }
    });
  });
});
