// The conversation archive with the real pieces: the bundled runner, the Agent
// SDK and Claude Code (unsandboxed, as uid 1000) against the scripted fake
// model. `/compact` sent into the live session makes Claude Code compact it;
// its PreCompact hook must leave the transcript in conversations/ first.

import { chownSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  requestText,
  startFakeModelServer,
  type FakeModelServer,
  type RecordedRequest,
  type Turn,
} from '../support/fake-model-server.js';
import { localDay } from '../../runner/archive.js';
import { lastUserText, routed } from './agent-support.js';
import {
  AGENT_GID,
  AGENT_UID,
  bundleRunner,
  isType,
  makeAgentDirs,
  spawnRunner,
  type AgentDirs,
  type RunnerHarness,
} from '../support/runner-fixtures.js';

const E2E_TIMEOUT_MS = 30_000;

let dirs: AgentDirs;
let server: FakeModelServer | undefined;
let runner: RunnerHarness | undefined;

beforeAll(() => {
  bundleRunner();
  dirs = makeAgentDirs(AGENT_UID, AGENT_GID);
});
afterEach(async () => {
  if (runner && runner.child.exitCode === null) runner.child.kill('SIGKILL');
  runner = undefined;
  await server?.close();
  server = undefined;
});
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

async function startServer(script: Turn[]): Promise<FakeModelServer> {
  const socketPath = path.join(dirs.socketDir, 'model.sock');
  server = await startFakeModelServer({ script, listen: { socketPath } });
  chownSync(socketPath, AGENT_UID, AGENT_GID);
  return server;
}

/** Claude Code's compaction request ends with this instruction (it is a tool-carrying request). */
function isCompactionRequest(req: RecordedRequest): boolean {
  return /<summary> block/.test(requestText(req));
}

const PROMPT =
  '<messages><message sender="alice" time="2026-11-30 10:00">Remember that my teapot is blue</message></messages>';

describe('conversation archive before compaction', () => {
  // `/compact` as a prompt in the SDK's streaming input is a Claude Code slash
  // command: it sends one summarisation request and fires PreCompact (trigger
  // "manual") first. The host never sends it (its prompts are <messages> XML);
  // auto-compaction fires the same hook.
  it(
    'writes the transcript to conversations/ when /compact compacts the live session',
    async () => {
      const fake = await startServer(
        routed((req) => {
          if (isCompactionRequest(req))
            return { text: '<summary>The user said the teapot is blue.</summary>' };
          if (lastUserText(req).includes('What colour')) return { text: 'Still blue.' };
          return { text: 'Noted: the teapot is blue.' };
        }),
      );
      runner = spawnRunner({
        uid: AGENT_UID,
        gid: AGENT_GID,
        cwd: dirs.groupDir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
      });
      runner.send({
        type: 'start',
        runId: 'run-archive',
        prompt: PROMPT,
        group: { folder: 'main', isMain: true, name: 'Main' },
        assistantName: 'Andy',
        engine: 'claude-code',
        paths: { groupDir: dirs.groupDir, globalDir: dirs.globalDir, homeDir: dirs.homeDir },
        model: { socketPath: fake.socketPath ?? '', placeholderKey: 'nanoclaw-placeholder-e2e-archive' },
      });
      const first = await runner.waitFor(isType('output'));
      expect(first.text).toBe('Noted: the teapot is blue.');

      runner.send({ type: 'message', text: '/compact' });
      // The /compact turn ends with an (empty) output line once the summary is in.
      await runner.waitFor((l) => l.type === 'output' && l !== first);
      const logged = runner.lines.find(
        (l) => l.type === 'log' && l.msg.includes('archived the conversation before compaction'),
      );
      expect(fake.requests.filter(isCompactionRequest)).toHaveLength(1);
      const dir = path.join(dirs.groupDir, 'conversations');
      const files = readdirSync(dir);
      expect(files).toEqual([`${localDay(new Date())}-remember-that-my-teapot-is-blue.md`]);
      expect(logged?.type === 'log' && logged.msg).toContain(files[0]);
      const archive = readFileSync(path.join(dir, files[0]), 'utf8');
      expect(archive).toContain('# Remember that my teapot is blue');
      expect(archive).toMatch(
        /## User\n\n\*\*alice\*\* \(2026-11-30 10:00\): Remember that my teapot is blue/,
      );
      expect(archive).toMatch(/## Assistant\n\nNoted: the teapot is blue\./);
      expect(archive).not.toContain('/compact');
      expect(archive).not.toContain('system-reminder');

      // The session goes on from the summary.
      runner.send({ type: 'message', text: 'What colour is my teapot?' });
      const after = await runner.waitFor((l) => l.type === 'output' && l.text === 'Still blue.');
      expect(after.type === 'output' && after.sessionId).toBe(first.sessionId);
      const resumed = fake.conversationRequests().find((r) => lastUserText(r).includes('What colour'));
      expect(requestText(resumed!)).toContain('The user said the teapot is blue.');
      runner.send({ type: 'close' });
      expect(await runner.waitFor(isType('done'))).not.toHaveProperty('error');
    },
    E2E_TIMEOUT_MS,
  );
});
