/**
 * The MCP servers a worker's operator configures (HV_MCP_SERVERS): worker configuration, kept apart from the
 * reference rules in ./mcp so that workflow runs, which read references only, never build these schemas.
 */
import { z } from 'zod';
import { MCP_SERVER_NAME_PATTERN } from './mcp';

const McpStdioServerSchema = z
  .object({
    command: z.string().min(1, 'command must not be empty').max(4096),
    args: z.array(z.string().max(4096)).max(256, 'at most 256 args').default([]),
    env: z.record(z.string(), z.string().max(32_768)).optional(),
    cwd: z.string().max(4096).optional(),
    /** The server's stderr: the worker's (default) or discarded. */
    stderr: z.enum(['inherit', 'ignore']).default('inherit'),
  })
  .strict();

const McpHttpServerSchema = z
  .object({
    url: z
      .string()
      .max(2048)
      .refine((s) => {
        try {
          const u = new URL(s);
          return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
        } catch {
          return false;
        }
      }, 'url must be an http(s) URL of at most 2048 characters, without credentials'),
  })
  .strict();

/** One server the worker's operator configured: a stdio command or a Streamable HTTP URL. */
export const McpServerConfigSchema = z.union([McpStdioServerSchema, McpHttpServerSchema], {
  error: 'a server is {command, args?, env?, cwd?, stderr?} (stdio) or {url} (Streamable HTTP)',
});
export type McpServerConfig = z.output<typeof McpServerConfigSchema>;

/** HV_MCP_SERVERS: server name → config. */
export const McpServersSchema = z.record(z.string(), McpServerConfigSchema).superRefine((r, ctx) => {
  const names = Object.keys(r);
  if (names.length > 64) ctx.addIssue({ code: 'custom', message: 'at most 64 MCP servers' });
  for (const name of names.filter((n) => !MCP_SERVER_NAME_PATTERN.test(n)).slice(0, 8))
    ctx.addIssue({
      code: 'custom',
      path: [name],
      message: `a server name must be 1–64 letters, digits, _ or - (got "${name.slice(0, 70)}")`,
    });
});
