/**
 * MCP tools' pure rules (issue 21, src/core/mcp.ts): references, pinned
 * definitions, what annotations propose and forbid, undo argument mappings,
 * and the worker's HV_MCP_SERVERS.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  effectiveHints,
  formatMcpRef,
  loosenings,
  MissingUndoArgument,
  parseMcpRef,
  proposeAction,
  toolDefinitionHash,
  undoArguments,
  type McpToolRef,
  type ToolDefinition,
} from '../../src/core/mcp';
import {
  parseAction,
  requiredRingFor,
  createReversibilityRegistry,
  registerParsed,
} from '../../src/core/reversibility';
import { mcpServersFromEnv } from '../../activities/mcpClients';

const PIN = 'ab'.repeat(32);

describe('MCP tools: references', () => {
  it('parses mcp:<server>/<tool>#<pin>, and an undo with mapped arguments; formats back the same text', () => {
    const exec = `mcp:memory/create_entities#${PIN}`;
    assert.deepEqual(parseMcpRef(exec, false), { server: 'memory', tool: 'create_entities', pin: PIN });
    const undo = `mcp:memory/delete_entities?entityNames=input.entities[*].name&tag=result.structuredContent.id#${PIN}`;
    const ref = parseMcpRef(undo, true) as McpToolRef;
    assert.deepEqual(ref.arguments, {
      entityNames: 'input.entities[*].name',
      tag: 'result.structuredContent.id',
    });
    assert.equal(formatMcpRef(ref), undo);
    assert.equal(formatMcpRef(parseMcpRef(exec, false) as McpToolRef), exec);
  });

  it('refuses each malformed reference with a reason naming what is wrong', () => {
    const cases: [string, boolean, RegExp][] = [
      ['mcp:memory/create_entities', false, /must end with #<sha256/],
      [`mcp:memory/create_entities#${PIN.toUpperCase()}`, false, /64 lowercase hex/],
      [`mcp:/create_entities#${PIN}`, false, /server name ""/],
      [`mcp:memory#${PIN}`, false, /server name ""/],
      [`mcp:memory/bad tool#${PIN}`, false, /tool name "bad tool"/],
      [`mcp:memory/t?a=input#${PIN}`, false, /only an undoApi maps arguments/],
      [`mcp:memory/t?a=input.x&a=input.y#${PIN}`, true, /mapped twice/],
      [`mcp:memory/t?a=process.env#${PIN}`, true, /must be input or result/],
      [`mcp:memory/t?1a=input#${PIN}`, true, /must be an identifier/],
      [`mcp:memory/t?a#${PIN}`, true, /must be input or result/],
    ];
    for (const [s, undo, reason] of cases) {
      const r = parseMcpRef(s, undo);
      assert.equal(typeof r, 'string', `${s} is refused`);
      assert.match(r as string, reason, s);
    }
  });

  it('an action declaration takes an MCP reference, and refuses a malformed one naming the field', () => {
    const a = parseAction({
      actionId: 'memory.create_entities',
      reversibility: 'PARTIAL',
      executeApi: `mcp:memory/create_entities#${PIN}`,
      undoApi: `mcp:memory/delete_entities?entityNames=input.entities[*].name#${PIN}`,
    });
    assert.equal(a.executeApi, `mcp:memory/create_entities#${PIN}`);
    assert.throws(
      () => parseAction({ actionId: 'x', executeApi: 'mcp:memory/create_entities' }),
      /executeApi: executeApi: an MCP tool reference must end with #<sha256/,
    );
    assert.throws(() => parseAction({ actionId: 'x', executeApi: 'ftp://x' }), /or mcp:<server>\/<tool>#<sha256>/);
  });
});

describe('MCP tools: pinned definitions and annotations', () => {
  const def: ToolDefinition = {
    name: 'create_entities',
    description: 'Create entities',
    inputSchema: { type: 'object', properties: { entities: { type: 'array' } } },
    annotations: { destructiveHint: false, idempotentHint: false },
  };

  it('hashes the canonical definition: key order does not matter, any change of name, description, schema or annotations does', () => {
    const h = toolDefinitionHash(def);
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.equal(
      toolDefinitionHash({
        annotations: { idempotentHint: false, destructiveHint: false },
        inputSchema: { properties: { entities: { type: 'array' } }, type: 'object' },
        description: 'Create entities',
        name: 'create_entities',
      }),
      h,
    );
    for (const changed of [
      { ...def, name: 'create_entity' },
      { ...def, description: 'Create entities and mail them out' },
      { ...def, inputSchema: { type: 'object' } },
      { ...def, annotations: { destructiveHint: true } },
      { ...def, annotations: undefined },
    ])
      assert.notEqual(toolDefinitionHash(changed), h);
  });

  it("applies MCP's defaults to absent hints: not read-only, destructive, not idempotent, open world", () => {
    assert.deepEqual(effectiveHints(undefined), {
      readOnly: false,
      destructive: true,
      idempotent: false,
      openWorld: true,
    });
    assert.deepEqual(effectiveHints({ readOnlyHint: true }), {
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: true,
    });
  });

  it('proposes: read-only → ring 3; not destructive with an undo → PARTIAL ring 2; destructive or unannotated → NONE ring 1', () => {
    const read = proposeAction('m', { ...def, name: 'read', annotations: { readOnlyHint: true } });
    assert.deepEqual(
      [read.readOnly, read.reversibility, read.ring, read.retries, read.undoApi],
      [true, 'FULL', 3, true, undefined],
    );
    const undo = `mcp:m/delete#${PIN}`;
    const create = proposeAction('m', def, undo);
    assert.deepEqual([create.reversibility, create.ring, create.retries, create.undoApi], ['PARTIAL', 2, false, undo]);
    assert.equal(create.executeApi, `mcp:m/create_entities#${toolDefinitionHash(def)}`);
    assert.equal(proposeAction('m', def).reversibility, 'NONE', 'no undo declared: NONE');
    const wipe = proposeAction('m', { name: 'wipe', inputSchema: {} }, undo);
    assert.deepEqual([wipe.reversibility, wipe.ring, wipe.retries], ['NONE', 1, false]);
    const idem = proposeAction('m', { name: 'del', inputSchema: {}, annotations: { idempotentHint: true } });
    assert.equal(idem.retries, true);
    // What it proposes is what a session's registry requires.
    const registry = createReversibilityRegistry();
    for (const p of [read, create, wipe]) {
      const { ring, retries: _r, ...declared } = p;
      registerParsed(registry, parseAction(declared));
      assert.equal(requiredRingFor(registry, p.actionId), ring);
    }
  });

  it('a declaration may tighten the annotations, never loosen them', () => {
    const destructive = { destructiveHint: true };
    assert.deepEqual(loosenings({ readOnly: false, reversibility: 'NONE' }, destructive), []);
    assert.equal(loosenings({ readOnly: false, reversibility: 'PARTIAL' }, destructive).length, 1);
    assert.equal(
      loosenings({ readOnly: false, reversibility: 'FULL' }, undefined).length,
      1,
      'unannotated is destructive',
    );
    assert.equal(loosenings({ readOnly: true, reversibility: 'FULL' }, { destructiveHint: false }).length, 1);
    assert.deepEqual(loosenings({ readOnly: true, reversibility: 'FULL' }, { readOnlyHint: true }), []);
    assert.deepEqual(loosenings({ readOnly: false, reversibility: 'NONE' }, { readOnlyHint: true }), [], 'tighter');
    assert.deepEqual(loosenings({ readOnly: false, reversibility: 'PARTIAL' }, { destructiveHint: false }), []);
  });
});

describe('MCP tools: undo arguments', () => {
  const step = {
    input: { entities: [{ name: 'a' }, { name: 'b' }] },
    result: { structuredContent: { ids: [7, 8] } },
  };
  it('reads each mapped path from the step input and result; no mapping, the input itself', () => {
    const ref = parseMcpRef(
      `mcp:m/delete?entityNames=input.entities[*].name&first=result.structuredContent.ids[0]#${PIN}`,
      true,
    ) as McpToolRef;
    assert.deepEqual(undoArguments(ref, step), { entityNames: ['a', 'b'], first: 7 });
    assert.deepEqual(undoArguments({ server: 'm', tool: 'd', pin: PIN }, step), step.input);
  });
  it('a path that finds nothing, or reaches through the prototype, is a MissingUndoArgument', () => {
    for (const path of [
      'input.missing',
      'input.entities[5].name',
      'result.structuredContent.ids[*].x',
      'input.constructor',
    ]) {
      const ref = parseMcpRef(`mcp:m/d?x=${path}#${PIN}`, true) as McpToolRef;
      assert.throws(() => undoArguments(ref, step), MissingUndoArgument, path);
    }
  });
});

describe('MCP tools: HV_MCP_SERVERS', () => {
  it('reads stdio and Streamable HTTP servers from JSON or @file; unset, none', () => {
    assert.equal(mcpServersFromEnv(undefined).size, 0);
    const json = JSON.stringify({
      memory: { command: 'node', args: ['server.js'], env: { MEMORY_FILE_PATH: '/tmp/m.jsonl' } },
      remote: { url: 'https://tools.example/mcp' },
    });
    const servers = mcpServersFromEnv(json);
    assert.deepEqual(servers.get('memory'), {
      command: 'node',
      args: ['server.js'],
      env: { MEMORY_FILE_PATH: '/tmp/m.jsonl' },
      stderr: 'inherit',
    });
    assert.deepEqual(servers.get('remote'), { url: 'https://tools.example/mcp' });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hv-mcp-')), 'servers.json');
    fs.writeFileSync(file, json);
    assert.deepEqual([...mcpServersFromEnv(`@${file}`).keys()], ['memory', 'remote']);
  });
  it('refuses a wrong entry naming the variable and what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['not json', /HV_MCP_SERVERS must be a JSON object/],
      ['{"bad name": {"url": "https://x.example"}}', /HV_MCP_SERVERS.*server name must be 1–64/],
      ['{"s": {"url": "file:///etc/passwd"}}', /HV_MCP_SERVERS/],
      ['{"s": {"url": "https://user:pw@x.example"}}', /HV_MCP_SERVERS/],
      ['{"s": {"command": "node", "shell": true}}', /HV_MCP_SERVERS/],
      ['@/nonexistent/servers.json', /HV_MCP_SERVERS: cannot read/],
    ];
    for (const [raw, message] of cases) assert.throws(() => mcpServersFromEnv(raw), message, raw);
  });
});
