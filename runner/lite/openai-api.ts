// The OpenAI-compatible provider of the lite engine (Ollama, llama.cpp, hosted
// chat-completions endpoints): the engine keeps its history in Messages API
// shape, and this module translates one request into a streamed
// /v1/chat/completions call on the broker's socket and the answer back. The
// broker holds the provider's credential; the runner sends the placeholder.

import http from 'node:http';
import {
  ModelApiError,
  contentBlocks,
  isRetryableStatus,
  type AssistantReply,
  type ContentBlock,
  type MessagesRequest,
  type ModelEndpoint,
  type OtherBlock,
  type ToolResultBlock,
  type ToolUseBlock,
} from './messages-api.js';
import { readEventStream } from './sse.js';

type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | ChatContentPart[] }
  | {
      role: 'assistant';
      content: string | null;
      tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
    }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ChatRequest {
  model: string;
  max_tokens: number;
  messages: ChatMessage[];
  tools: Array<{
    type: 'function';
    function: { name: string; description: string; parameters: Record<string, unknown> };
  }>;
  stream: true;
  stream_options: { include_usage: true };
}

function toolResultText(block: ToolResultBlock): string {
  const text =
    typeof block.content === 'string'
      ? block.content
      : block.content
          .map((part) => (part.type === 'text' ? part.text : `[${part.type} not shown]`))
          .join('\n');
  return block.is_error ? `ERROR: ${text}` : text;
}

/** The Messages-shaped request as a chat-completions request. */
export function toChatRequest(request: MessagesRequest): ChatRequest {
  const messages: ChatMessage[] = [
    { role: 'system', content: request.system.map((b) => b.text).join('\n\n') },
  ];
  for (const message of request.messages) {
    const parts = contentBlocks(message);
    if (message.role === 'assistant') {
      const text = parts
        .filter((b): b is { type: 'text'; text: string } => b.type === 'text')
        .map((b) => b.text)
        .join('\n');
      const calls = parts
        .filter((b): b is ToolUseBlock => b.type === 'tool_use')
        .map((b) => ({
          id: b.id,
          type: 'function' as const,
          function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
        }));
      messages.push({
        role: 'assistant',
        content: text === '' ? null : text,
        ...(calls.length ? { tool_calls: calls } : {}),
      });
      continue;
    }
    // Tool results first: they must follow the assistant message that asked for them.
    for (const b of parts) {
      if (b.type === 'tool_result') {
        const result = b as ToolResultBlock;
        messages.push({ role: 'tool', tool_call_id: result.tool_use_id, content: toolResultText(result) });
      }
    }
    const content: ChatContentPart[] = [];
    for (const b of parts) {
      if (b.type === 'text') content.push({ type: 'text', text: (b as { text: string }).text });
      else if (b.type === 'image') {
        const source = (b as { source: { media_type: string; data: string } }).source;
        content.push({
          type: 'image_url',
          image_url: { url: `data:${source.media_type};base64,${source.data}` },
        });
      } else if (b.type === 'document')
        content.push({ type: 'text', text: '[a PDF document this model cannot read]' });
    }
    if (content.length === 0) continue;
    const textOnly = content.every((c) => c.type === 'text');
    messages.push({
      role: 'user',
      content: textOnly ? content.map((c) => (c as { text: string }).text).join('\n') : content,
    });
  }
  return {
    model: request.model,
    max_tokens: request.max_tokens,
    messages,
    tools: request.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: t.input_schema },
    })),
    stream: true,
    stream_options: { include_usage: true },
  };
}

const STOP_REASONS: Record<string, string> = {
  stop: 'end_turn',
  tool_calls: 'tool_use',
  length: 'max_tokens',
};

/** Folds chat-completions stream chunks into a Messages-shaped reply. */
export class ChatReplyBuilder {
  private text = '';
  private readonly calls: Array<{ id: string; name: string; args: string }> = [];
  private finishReason: string | null = null;
  private usage = { input_tokens: 0, output_tokens: 0 };
  private done = false;

  apply(data: string): void {
    if (data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    const chunk = JSON.parse(data) as {
      error?: { message?: string; type?: string };
      choices?: Array<{
        delta?: {
          content?: string | null;
          tool_calls?: Array<{
            index: number;
            id?: string;
            function?: { name?: string; arguments?: string };
          }>;
        };
        finish_reason?: string | null;
      }>;
      usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
    };
    if (chunk.error) {
      throw new ModelApiError(`model stream failed: ${chunk.error.message ?? 'error'}`, null, true);
    }
    for (const choice of chunk.choices ?? []) {
      if (choice.delta?.content) this.text += choice.delta.content;
      for (const call of choice.delta?.tool_calls ?? []) {
        const slot = (this.calls[call.index] ??= { id: '', name: '', args: '' });
        if (call.id) slot.id = call.id;
        if (call.function?.name) slot.name += call.function.name;
        if (call.function?.arguments) slot.args += call.function.arguments;
      }
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
    if (chunk.usage) {
      this.usage = {
        input_tokens: chunk.usage.prompt_tokens ?? 0,
        output_tokens: chunk.usage.completion_tokens ?? 0,
      };
    }
  }

  finish(): AssistantReply {
    if (!this.done && this.finishReason === null) {
      throw new ModelApiError('model stream ended before it finished', null, true);
    }
    const content: Array<ContentBlock | OtherBlock> = [];
    if (this.text.trim() !== '') content.push({ type: 'text', text: this.text });
    this.calls.forEach((call, i) => {
      let input: unknown = {};
      try {
        input = call.args.trim() === '' ? {} : JSON.parse(call.args);
      } catch {
        // Small local models write broken JSON now and then; the tool then says what is missing.
        input = { unparsed_arguments: call.args };
      }
      content.push({ type: 'tool_use', id: call.id || `call_${i}`, name: call.name, input });
    });
    const stopReason = this.finishReason ? (STOP_REASONS[this.finishReason] ?? this.finishReason) : null;
    return { content, stopReason, usage: this.usage };
  }
}

/** One streamed chat-completions request through the broker socket. */
export function streamChatCompletion(
  endpoint: ModelEndpoint,
  request: MessagesRequest,
): Promise<AssistantReply> {
  const body = JSON.stringify(toChatRequest(request));
  return new Promise<AssistantReply>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: endpoint.socketPath,
        method: 'POST',
        path: '/v1/chat/completions',
        headers: {
          host: 'localhost',
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${endpoint.apiKey}`,
          accept: 'text/event-stream',
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8').slice(0, 500);
            reject(
              new ModelApiError(
                `model request failed (HTTP ${status}): ${text}`,
                status,
                isRetryableStatus(status),
              ),
            );
          });
          return;
        }
        const reply = new ChatReplyBuilder();
        readEventStream(
          res,
          { apply: ({ data }) => reply.apply(data), finish: () => reply.finish() },
          {
            resolve,
            reject,
            onError: (err) => new ModelApiError(`model unreachable: ${err.message}`, null, true),
          },
        );
      },
    );
    req.on('error', (err) => reject(new ModelApiError(`model unreachable: ${err.message}`, null, true)));
    req.end(body);
  });
}
