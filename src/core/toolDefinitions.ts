/**
 * Issue 21: a step refused because its MCP tool's definition changed since its action pinned it — what the saga
 * records on the step and its session reads back to quarantine the agent. No zod here: the saga's bundle loads it.
 */

/** An MCP tool (`server/tool`) whose definition hashes (SHA-256, hex) to `current`, not the `pinned` one. */
export interface ToolDefinitionChange {
  tool: string;
  pinned: string;
  current: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A well-formed ToolDefinitionChange (a tool of at most 200 characters, two SHA-256 hex digests). */
export function isToolDefinitionChange(x: unknown): x is ToolDefinitionChange {
  if (typeof x !== 'object' || x === null) return false;
  const c = x as Partial<ToolDefinitionChange>;
  return (
    typeof c.tool === 'string' &&
    c.tool.length <= 200 &&
    typeof c.pinned === 'string' &&
    SHA256_HEX.test(c.pinned) &&
    typeof c.current === 'string' &&
    SHA256_HEX.test(c.current)
  );
}
