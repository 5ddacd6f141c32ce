// The `echo` engine: a scripted stand-in for the model so host integration
// tests can drive every protocol path (tool calls, failures, floods, garbage)
// without Claude Code. Directive lines inside a message body:
//   /tool <name> <json-args>  tool_call, then output `tool <name> ok: <json>` or `tool <name> error: <msg>`
//   /fail                     done {error:'scripted failure'}, exit 1, before any output of this turn
//   /crash                    exit 3 at once
//   /sleep <ms>               wait before answering
//   /flood <bytes>            about that many bytes of junk output lines
//   /garbage                  one non-JSON line on stdout, then carry on
// Directives run in order; then the turn's one answer is emitted: any tool outcomes, then `echo: <text>`.

import { randomInt } from 'node:crypto';
import type { StartLine } from '../src/core/protocol.js';
import type { HostConnection } from './protocol-io.js';

const MESSAGE_RE = /<message\b[^>]*>([\s\S]*?)<\/message>/g;
const MESSAGES_RE = /(?:^|\n)<messages>\n[\s\S]*\n?<\/messages>$/;
const QUOTED_RE = /^<quoted\b[^>]*>[\s\S]*?<\/quoted>/;
const TASK_RE = /\n<task>([\s\S]*)<\/task>\n<\/scheduled_task>$/;

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/**
 * The message bodies of a `<messages>` prompt joined by "\n" (a context header
 * before the element and a quoted excerpt inside a message are left out), the
 * task text of a `<scheduled_task>` prompt; any other prompt unchanged.
 */
export function promptText(prompt: string): string {
  const trimmed = prompt.trim();
  const messages = MESSAGES_RE.exec(trimmed);
  if (messages) {
    const bodies = [...messages[0].matchAll(MESSAGE_RE)].map((m) => unescapeXml(m[1].replace(QUOTED_RE, '')));
    return bodies.join('\n');
  }
  const task = TASK_RE.exec(trimmed);
  if (task) return unescapeXml(task[1]);
  return prompt;
}

type ExitCode = number;

export async function runEchoEngine(conn: HostConnection, start: StartLine): Promise<ExitCode> {
  const sessionId = start.sessionId ?? `echo-session-${randomInt(1, 2 ** 31)}`;
  let resumedNote = start.sessionId ? `resumed ${start.sessionId}\n` : '';

  // Like a model's result, a turn has one answer: tool outcomes and the echo are
  // sent together at the turn's end (the host counts one output line as one turn).
  let turnText: string[] = [];
  const output = async (text: string): Promise<void> => {
    turnText.push(text);
  };
  const endTurn = async (): Promise<void> => {
    const text = turnText.join('\n');
    turnText = [];
    await conn.send({ type: 'output', text: resumedNote + text, sessionId });
    resumedNote = '';
  };

  // Returns an exit code when the turn ends the process.
  const answer = async (prompt: string): Promise<ExitCode | undefined> => {
    const text = promptText(prompt);
    for (const line of text.split('\n').map((l) => l.trim())) {
      if (line === '/fail') {
        await conn.send({ type: 'done', sessionId, error: 'scripted failure' });
        return 1;
      }
      if (line === '/crash') process.exit(3);
      if (line === '/garbage') {
        await conn.writeRaw('this is not a protocol line {\n');
        continue;
      }
      const sleep = /^\/sleep\s+(\d+)$/.exec(line);
      if (sleep) {
        await new Promise((resolve) => setTimeout(resolve, Number(sleep[1])));
        continue;
      }
      const flood = /^\/flood\s+(\d+)$/.exec(line);
      if (flood) {
        await floodOutput(conn, Number(flood[1]), sessionId);
        continue;
      }
      const toolMatch = /^\/tool\s+(\S+)(?:\s+([\s\S]+))?$/.exec(line);
      if (toolMatch) {
        const name = toolMatch[1];
        let args: unknown = {};
        try {
          args = toolMatch[2] ? JSON.parse(toolMatch[2]) : {};
        } catch {
          await output(`tool ${name} error: arguments are not JSON`);
          continue;
        }
        // Any name is forwarded so tests can exercise the host's unknown-tool path.
        const outcome = await conn.callTool(name, args);
        await output(
          outcome.ok
            ? `tool ${name} ok: ${JSON.stringify(outcome.result ?? null)}`
            : `tool ${name} error: ${outcome.error}`,
        );
      }
    }
    await output(`echo: ${text}`);
    await endTurn();
    return undefined;
  };

  for await (const prompt of conn.prompts(start.prompt)) {
    const exitCode = await answer(prompt);
    if (exitCode !== undefined) return exitCode;
  }
  await conn.send({ type: 'done', sessionId });
  return 0;
}

async function floodOutput(conn: HostConnection, totalBytes: number, sessionId: string): Promise<void> {
  const chunkBytes = 16 * 1024;
  let written = 0;
  while (written < totalBytes) {
    const size = Math.min(chunkBytes, totalBytes - written);
    const line = { type: 'output' as const, text: 'x'.repeat(size), sessionId };
    await conn.send(line);
    written += size;
  }
}
