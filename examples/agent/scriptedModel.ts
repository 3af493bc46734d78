/**
 * A scripted language model (the AI SDK's MockLanguageModelV3, from `ai/test`): it calls the tools a script
 * says, reading what its tools answered in the prompt it is given, as a real model would — so an agent runs
 * offline, in the example and in the tests alike.
 */
import { MockLanguageModelV3 } from 'ai/test';

/** The language model interface's own types (v3, the `ai` 6 models'), read off the mock. */
type LanguageModelV3CallOptions = Parameters<MockLanguageModelV3['doGenerate']>[0];
type Generated = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;

const usage: Generated['usage'] = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

let callIds = 0;

/** The model calls tools (`[name, input]` each, in one step: the AI SDK runs them together). */
export function callTools(...calls: [toolName: string, input: Record<string, unknown>][]): Generated {
  return {
    content: calls.map(([toolName, input]) => ({
      type: 'tool-call' as const,
      toolCallId: `call-${++callIds}`,
      toolName,
      input: JSON.stringify(input),
    })),
    finishReason: { unified: 'tool-calls', raw: undefined },
    usage,
    warnings: [],
  };
}

/** The model answers in text, and stops. */
export function say(text: string): Generated {
  return { content: [{ type: 'text', text }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] };
}

/** What the tools answered the model's last step, as its prompt shows them: a result, or an error's text. */
export interface ToolAnswer {
  toolName: string;
  error: string | null;
  output: unknown;
}

export function lastToolAnswers(call: LanguageModelV3CallOptions): ToolAnswer[] {
  const last = call.prompt.at(-1);
  if (last?.role !== 'tool') return [];
  return last.content.flatMap((part) => {
    if (part.type !== 'tool-result') return [];
    const out = part.output;
    const error = out.type === 'error-text' ? out.value : out.type === 'error-json' ? JSON.stringify(out.value) : null;
    return [{ toolName: part.toolName, error, output: 'value' in out ? out.value : undefined }];
  });
}

/** A model whose n-th call (from 0) answers `script(n, call)`. */
export function scriptedModel(script: (n: number, call: LanguageModelV3CallOptions) => Generated) {
  let n = 0;
  return new MockLanguageModelV3({
    provider: 'scripted',
    modelId: 'scripted-agent',
    doGenerate: async (call) => script(n++, call),
  });
}
