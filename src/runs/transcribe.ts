// Voice notes become text on the host, before the prompt is built (issue 13):
// the speech service's key stays here, no sandbox ever holds it. One kind today:
// any OpenAI-compatible `/v1/audio/transcriptions` endpoint (OpenAI, Groq, a
// local whisper.cpp or faster-whisper server). A failure is the caller's to
// degrade: the message keeps its placeholder and the audio file.

import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';

export interface Transcriber {
  /** What `doctor` and the logs call it, e.g. `openai-compatible (http://127.0.0.1:8080)`. */
  readonly description: string;
  /** The spoken text of an audio file; rejects with a short reason. */
  transcribe(file: { path: string; type: string }): Promise<string>;
}

export interface OpenAiCompatibleOptions {
  /** Base URL without `/v1/...`, no trailing slash. */
  baseUrl: string;
  model: string;
  apiKey: string | null;
  timeoutMs: number;
}

/** Longest transcript kept; a voice note of several minutes fits well within it. */
const MAX_TRANSCRIPT_CHARS = 8000;

export function openAiCompatibleTranscriber(options: OpenAiCompatibleOptions): Transcriber {
  const endpoint = `${options.baseUrl}/v1/audio/transcriptions`;
  return {
    description: `openai-compatible (${options.baseUrl}, model ${options.model})`,
    async transcribe(file) {
      const bytes = await fs.readFile(file.path);
      const form = new FormData();
      form.set(
        'file',
        new Blob([bytes], { type: file.type || 'application/octet-stream' }),
        path.basename(file.path),
      );
      form.set('model', options.model);
      form.set('response_format', 'json');
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          body: form,
          headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (err) {
        const name = err instanceof Error ? err.name : '';
        throw new Error(
          name === 'TimeoutError'
            ? 'the speech service did not answer in time'
            : 'the speech service is unreachable',
          {
            cause: err,
          },
        );
      }
      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined);
        throw new Error(`the speech service answered HTTP ${response.status}`);
      }
      const body = (await response.json().catch(() => null)) as { text?: unknown } | null;
      if (!body || typeof body.text !== 'string') throw new Error('the speech service sent no text');
      const text = body.text.replace(/\s+/g, ' ').trim();
      if (text === '') throw new Error('nothing was recognised');
      return text.length > MAX_TRANSCRIPT_CHARS ? `${text.slice(0, MAX_TRANSCRIPT_CHARS - 1)}…` : text;
    },
  };
}

/** The configured transcriber, or null for `none` (voice notes stay placeholders with their file). */
export function transcriberFromConfig(config: Config, apiKey: string | null): Transcriber | null {
  if (config.transcriber === 'none') return null;
  return openAiCompatibleTranscriber({
    baseUrl: config.transcriberUrl,
    model: config.transcriberModel,
    apiKey,
    timeoutMs: config.transcriberTimeoutMs,
  });
}

/**
 * `doctor`'s view of the transcriber: none configured is fine (voice notes reach
 * the agent as audio files); a configured service must answer and accept the
 * key. Asks GET /v1/models, which costs nothing; any answer but 401/403 counts
 * as reachable (local whisper servers often lack that route). Never shows the key.
 */
export async function checkTranscriber(
  config: Pick<Config, 'transcriber' | 'transcriberUrl' | 'transcriberModel'>,
  apiKey: string | null,
  timeoutMs = 5000,
): Promise<{ ok: boolean; detail: string }> {
  if (config.transcriber === 'none') {
    return {
      ok: true,
      detail:
        'none: voice notes reach the agent as audio files with a placeholder (set "transcriber": "openai-compatible" to transcribe them)',
    };
  }
  const where = `${config.transcriberUrl} (model ${config.transcriberModel})`;
  try {
    const response = await fetch(`${config.transcriberUrl}/v1/models`, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 401 || response.status === 403) {
      return {
        ok: false,
        detail: `openai-compatible at ${where}: the key was refused (HTTP ${response.status}); check NANOCLAW_TRANSCRIBER_KEY`,
      };
    }
    return {
      ok: true,
      detail: `openai-compatible at ${where}: reachable${apiKey ? ', key set' : ', no key set'}`,
    };
  } catch {
    return {
      ok: false,
      detail: `openai-compatible at ${where}: unreachable; voice notes fall back to a placeholder with the audio file until it answers`,
    };
  }
}
