// The runner's hand-written host-line validator against the host's zod schemas:
// both must accept and refuse the same lines with the same result, and the lite
// engine's JSON tool schemas must equal what claude-code's zod shapes render to.

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MAX_LINE_BYTES, TOOL_NAMES, parseHostLine as hostParse } from '../../../src/core/protocol.js';
import { parseHostLine as runnerParse } from '../../../runner/host-lines.js';
import { TOOL_SCHEMAS } from '../../../runner/tool-schemas.js';
import { TOOL_SPECS } from '../../../runner/tools.js';

const start = {
  type: 'start',
  runId: 'run-1',
  prompt: 'hello',
  group: { folder: 'family', isMain: false, name: 'Family' },
  assistantName: 'Andy',
  engine: 'lite',
  paths: { groupDir: '/workspace/group', globalDir: '/workspace/global', homeDir: '/home/agent' },
};
const full = {
  ...start,
  sessionId: 'sess-1',
  scheduledTask: { id: 't1', contextMode: 'isolated' },
  modelName: 'claude-x',
  model: { socketPath: '/run/model.sock', placeholderKey: 'ph', api: 'openai' },
  compaction: { windowTokens: 200000, atFraction: 0.8 },
  egress: { socketPath: '/run/egress.sock' },
};

const accepted: unknown[] = [
  start,
  full,
  { ...start, engine: 'claude-code', model: { socketPath: '/s', placeholderKey: 'k' } },
  { ...start, engine: 'echo', extra: 'dropped', group: { ...start.group, extra: 1 } },
  { ...full, scheduledTask: { id: 't', contextMode: 'group' }, model: { ...full.model, api: 'anthropic' } },
  { ...start, modelName: 'm'.repeat(100) },
  { type: 'message', text: 'more' },
  { type: 'message', text: '', extra: true },
  { type: 'tool_result', id: 'call-1', ok: true, result: { tasks: [] } },
  { type: 'tool_result', id: 'call-1', ok: true, result: null },
  { type: 'tool_result', id: 'call-1', ok: true },
  { type: 'tool_result', id: 'call-2', ok: false, error: 'not allowed' },
  { type: 'close' },
];

const refused: unknown[] = [
  { type: 'nonsense' },
  { type: 42 },
  {},
  [],
  [start],
  null,
  5,
  'start',
  { ...start, runId: 5 },
  { ...start, prompt: undefined },
  { ...start, sessionId: null },
  { ...start, group: { folder: 'f', isMain: 'no', name: 'n' } },
  { ...start, group: null },
  { ...start, engine: 'gpt' },
  { ...start, modelName: '' },
  { ...start, modelName: 'm'.repeat(101) },
  { ...start, paths: { groupDir: '/g', globalDir: '/gl' } },
  { ...start, scheduledTask: { id: 't', contextMode: 'shared' } },
  { ...start, model: { socketPath: '/s' } },
  { ...start, model: { socketPath: '/s', placeholderKey: 'k', api: 'gemini' } },
  { ...start, compaction: { windowTokens: 0, atFraction: 0.5 } },
  { ...start, compaction: { windowTokens: 1.5, atFraction: 0.5 } },
  { ...start, compaction: { windowTokens: 1000, atFraction: 1 } },
  { ...start, compaction: { windowTokens: 1000, atFraction: 0 } },
  { ...start, compaction: { windowTokens: 1000 } },
  { ...start, compaction: { windowTokens: 2 ** 60, atFraction: 0.5 } },
  { ...start, egress: {} },
  { type: 'message' },
  { type: 'message', text: 3 },
  { type: 'tool_result', id: 'call-1' },
  { type: 'tool_result', id: 'call-1', ok: 'yes' },
  { type: 'tool_result', id: 'call-1', ok: false, error: 7 },
  // Runner → host types are known but not valid in this direction.
  { type: 'ready' },
  { type: 'output', text: 'hi' },
];

function sameAnswer(raw: string): void {
  const host = hostParse(raw);
  const runner = runnerParse(raw);
  if (host.ok) expect(runner).toStrictEqual(host);
  else expect(runner).toMatchObject({ ok: false, reason: host.reason });
  expect(runner.ok).toBe(host.ok);
}

describe('the runner host-line validator', () => {
  it('accepts what the host schemas accept, with the same parsed line', () => {
    for (const value of accepted) {
      expect(runnerParse(JSON.stringify(value)).ok, JSON.stringify(value)).toBe(true);
      sameAnswer(JSON.stringify(value));
    }
  });

  it('refuses what the host schemas refuse, with the same reason', () => {
    for (const value of refused) {
      expect(runnerParse(JSON.stringify(value)).ok, JSON.stringify(value)).toBe(false);
      sameAnswer(JSON.stringify(value));
    }
  });

  it('refuses text that is not JSON and lines over the cap, as the host does', () => {
    for (const raw of ['{"type":', 'not json', `{"type":"message","text":"${'x'.repeat(MAX_LINE_BYTES)}"}`]) {
      expect(runnerParse(raw).ok).toBe(false);
      sameAnswer(raw);
    }
  });
});

describe('the nanoclaw tool schemas', () => {
  it("equal the JSON schemas of claude-code's zod shapes, tool by tool", () => {
    expect(Object.keys(TOOL_SCHEMAS).sort()).toEqual([...TOOL_NAMES].sort());
    for (const name of TOOL_NAMES) {
      const { $schema: _schema, ...rendered } = z.toJSONSchema(z.object(TOOL_SPECS[name].shape), {
        io: 'input',
      });
      expect(TOOL_SCHEMAS[name].input_schema, name).toStrictEqual(rendered);
      expect(TOOL_SCHEMAS[name].description).toBe(TOOL_SPECS[name].description);
    }
  });
});
