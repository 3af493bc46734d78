/**
 * The MCP servers a worker calls tools at (issue 21), and one client per
 * server. Servers are the operator's to configure (HV_MCP_SERVERS): a session
 * can only name one of them, never add one — the same consent as HTTP tools'
 * HV_TOOL_ORIGINS. A client connects on its first use, is dropped after a
 * failure (the next call connects again) and closed at worker shutdown.
 *
 * A Streamable HTTP server is held to the HTTP tools' rules
 * (activities/httpTool.ts checkedAddresses): every request goes to the
 * configured origin only, its host's addresses are checked (no private,
 * loopback … address unless HV_TOOL_ALLOW_PRIVATE), and redirects are not
 * followed. The request itself is made by fetch, which resolves the host
 * again: unlike an HTTP tool's, it is not pinned to the checked address.
 */
import * as fs from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { McpServersSchema, type McpServerConfig } from '../src/core/mcpServers';
import { parse } from '../src/core/common';
import { checkedAddresses } from './httpTool';
import type { ToolPolicy } from './toolPolicy';

/** Server name → how to reach it. Read on every call, so a test harness may add servers as it starts them. */
export type McpServers = ReadonlyMap<string, McpServerConfig>;

export const NO_MCP_SERVERS: McpServers = new Map();

/**
 * HV_MCP_SERVERS: a JSON object `{name: {command, args?, env?, cwd?, stderr?} | {url}}`,
 * or `@<path>` naming a file holding one. Unset or empty: no MCP server.
 */
export function mcpServersFromEnv(raw: string | undefined, name = 'HV_MCP_SERVERS'): Map<string, McpServerConfig> {
  if (raw === undefined || raw.trim() === '') return new Map();
  let text = raw.trim();
  if (text.startsWith('@')) {
    try {
      text = fs.readFileSync(text.slice(1), 'utf8');
    } catch (err) {
      throw new Error(`${name}: cannot read ${text.slice(1)}: ${(err as Error).message}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} must be a JSON object of servers (or @file): ${(err as Error).message}`);
  }
  try {
    return new Map(Object.entries(parse(McpServersSchema, json, name)));
  } catch (err) {
    throw new Error((err as Error).message);
  }
}

/** A fetch that only reaches the configured origin at addresses the worker's tool policy allows, never following redirects. */
function guardedFetch(origin: string, policy: ToolPolicy): typeof fetch {
  const only: ToolPolicy = {
    origins: new Set([origin]),
    allowPrivateAddresses: policy.allowPrivateAddresses,
    maxResponseBytes: policy.maxResponseBytes,
  };
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    await checkedAddresses(url, only);
    const response = await fetch(input, { ...init, redirect: 'manual' });
    if (response.status >= 300 && response.status < 400) {
      throw ApplicationFailure.nonRetryable(
        `MCP server at ${origin} answered ${response.status} (Location ${String(response.headers.get('location')).slice(0, 300)}); redirects are not followed`,
        MCP_REDIRECT,
      );
    }
    return response;
  };
}

/** Why a client could not be made; the step failed before anything was sent. */
export const MCP_UNAVAILABLE = 'McpServerUnavailable';
/** A Streamable HTTP server answered 3xx: not followed (while listing, nothing was called). */
export const MCP_REDIRECT = 'McpServerRedirect';

/** One client per configured server, connected on first use. */
export class McpClients {
  private readonly clients = new Map<string, Promise<Client>>();

  constructor(
    private readonly servers: McpServers,
    private readonly policy: ToolPolicy,
    private readonly clientName = 'agent-hypervisor',
  ) {}

  has(server: string): boolean {
    return this.servers.has(server);
  }

  /** The server's connected client; connects when there is none (or the last one failed). */
  client(server: string): Promise<Client> {
    let client = this.clients.get(server);
    if (!client) {
      client = this.connect(server);
      this.clients.set(server, client);
      // A failed connection is forgotten: the next call tries again.
      client.catch(() => this.clients.get(server) === client && this.clients.delete(server));
    }
    return client;
  }

  /** Forget (and close) a client after a failure that may have broken its connection. */
  drop(server: string, client: Client): void {
    void this.clients.get(server)?.then(
      (c) => {
        if (c !== client) return;
        this.clients.delete(server);
        void c.close().catch(() => {});
      },
      () => {}, // a connection that failed is forgotten by client()
    );
  }

  /** Every tool the server lists now (all pages). */
  async listTools(server: string, signal?: AbortSignal): Promise<Tool[]> {
    const client = await this.client(server);
    const tools: Tool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const answer = await client.listTools(cursor ? { cursor } : undefined, signal ? { signal } : undefined);
      tools.push(...answer.tools);
      cursor = answer.nextCursor;
      if (!cursor) break;
    }
    return tools;
  }

  /** Closes every client (the worker stopping). */
  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.then((client) => client.close()).catch(() => {})));
  }

  private async connect(server: string): Promise<Client> {
    const config = this.servers.get(server);
    if (!config) throw new Error(`no MCP server named "${server}" is configured`);
    const client = new Client({ name: this.clientName, version: '1' });
    // A closed connection (the server exited, the stream ended) is forgotten: the next call reconnects.
    client.onclose = () => this.drop(server, client);
    if ('command' in config) {
      await client.connect(
        new StdioClientTransport({
          command: config.command,
          args: config.args,
          env: { ...getDefaultEnvironment(), ...(config.env ?? {}) },
          ...(config.cwd ? { cwd: config.cwd } : {}),
          stderr: config.stderr,
        }),
      );
    } else {
      const url = new URL(config.url);
      // Checked before the first byte is sent, so a refusal keeps its type (nothing was sent).
      await checkedAddresses(url, { ...this.policy, origins: new Set([url.origin]) });
      await client.connect(new StreamableHTTPClientTransport(url, { fetch: guardedFetch(url.origin, this.policy) }));
    }
    return client;
  }
}
