/**
 * `hv tools import` (issue 21) against the real memory server spawned over
 * stdio: the proposals follow the annotations, are pinned, and are taken by
 * `hv session join` as they are (--actions, and --manifest with --agent).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { memoryServerConfig, pinsOf } from '../helpers/mcpServers';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

describe('hv tools import (child process, the real memory MCP server)', function () {
  this.timeout(180_000);
  const { config } = memoryServerConfig();
  const env = { HV_MCP_SERVERS: JSON.stringify({ memory: config }) };
  const undo = 'create_entities=delete_entities?entityNames=input.entities[*].name';

  it('proposes pinned declarations from the annotations, which a join takes as they are', async () => {
    const pins = await pinsOf(config);
    const run = await hv(['tools', 'import', 'memory', '--undo', undo], env);
    assert.equal(run.code, 0, show(run));
    assert.match(run.stdout, /memory\.create_entities: ring 2, PARTIAL, undo declared; not idempotent: one attempt/);
    assert.match(run.stdout, /memory\.delete_entities: ring 1, NONE; idempotent: retries allowed \(destructive/);
    assert.match(run.stdout, /memory\.read_graph: ring 3, FULL; idempotent: retries allowed \(read-only/);
    const listed = await hv(['--json', 'tools', 'import', 'memory', '--undo', undo], env);
    const actions = json<any[]>(listed);
    const create = actions.find((a) => a.actionId === 'memory.create_entities');
    assert.deepEqual(create, {
      actionId: 'memory.create_entities',
      readOnly: false,
      reversibility: 'PARTIAL',
      executeApi: `mcp:memory/create_entities#${pins.get('create_entities')}`,
      undoApi: `mcp:memory/delete_entities?entityNames=input.entities[*].name#${pins.get('delete_entities')}`,
    });
    assert.deepEqual(
      actions.find((a) => a.actionId === 'memory.read_graph'),
      {
        actionId: 'memory.read_graph',
        readOnly: true,
        reversibility: 'FULL',
        executeApi: `mcp:memory/read_graph#${pins.get('read_graph')}`,
      },
    );

    const dir = tempDir();
    const file = path.join(dir, 'memory-actions.yaml');
    fs.writeFileSync(file, run.stdout);
    const id = uniqueId('mcp');
    const created = await hv(['session', 'create', '--id', id, '--creator', 'did:mesh:admin', '--identity', 'none']);
    assert.equal(created.code, 0, show(created));
    const joined = await hv(['session', 'join', id, '--agent', 'did:mesh:alpha', '--sigma', '0.85', '--actions', file]);
    assert.equal(joined.code, 0, show(joined));

    const manifestRun = await hv(['tools', 'import', 'memory', '--undo', undo, '--agent', 'did:mesh:beta'], env);
    assert.equal(manifestRun.code, 0, show(manifestRun));
    const manifest = path.join(dir, 'beta-manifest.yaml');
    fs.writeFileSync(manifest, manifestRun.stdout);
    const beta = await hv([
      'session',
      'join',
      id,
      '--agent',
      'did:mesh:beta',
      '--sigma',
      '0.85',
      '--manifest',
      manifest,
    ]);
    assert.equal(beta.code, 0, show(beta));
  });

  it('refuses a server that is not configured, and a malformed --undo, before connecting anywhere', async () => {
    const missing = await hv(['tools', 'import', 'crm'], env);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /no MCP server named "crm" is configured \(configured: memory\)/);
    const badUndo = await hv(['tools', 'import', 'memory', '--undo', 'create_entities'], env);
    assert.equal(badUndo.code, 2, show(badUndo));
    assert.match(badUndo.stderr, /--undo must be TOOL=UNDO_TOOL/);
    const badConfig = await hv(['tools', 'import', 'memory'], { HV_MCP_SERVERS: '{"memory": {"url": "ftp://x"}}' });
    assert.equal(badConfig.code, 2, show(badConfig));
    assert.match(badConfig.stderr, /HV_MCP_SERVERS: memory.url: url must be an http\(s\) URL/);
    const help = await hv(['--help']);
    assert.ok(help.stdout.includes('hv tools import '), '--help lists hv tools import');
  });
});
