// Which agent engines this install can run, and which one fits the board:
// `lite` and `echo` live in the runner bundle; `claude-code` also needs the
// Claude Code binary, a platform package a lite-only install leaves out.

import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../core/protocol.js';

/** Under this much RAM a Claude Code run (~300 MB) leaves room for too few chats. */
const LITE_RECOMMENDED_BELOW_BYTES = 1024 * 1024 * 1024;

/** True when the Agent SDK and its native Claude Code package for this platform are installed. */
export function claudeCodeInstalled(
  nodeModules: string,
  platform = process.platform,
  arch = process.arch,
): boolean {
  const scope = path.join(nodeModules, '@anthropic-ai');
  if (!fs.existsSync(path.join(scope, 'claude-agent-sdk', 'package.json'))) return false;
  let entries: string[];
  try {
    entries = fs.readdirSync(scope);
  } catch {
    return false;
  }
  return entries.some((name) => name.startsWith(`claude-agent-sdk-${platform}-${arch}`));
}

export interface EngineReport {
  ok: boolean;
  detail: string;
}

/**
 * The doctor line about engines: what is available, and whether the engines in
 * use (the configured one and any a group picked) can run here.
 */
export function describeEngines(input: {
  configured: Engine;
  groupEngines: readonly Engine[];
  claudeCode: boolean;
}): EngineReport {
  const available = ['lite', ...(input.claudeCode ? ['claude-code'] : []), 'echo'];
  const inUse = [...new Set([input.configured, ...input.groupEngines])];
  const missing = inUse.filter((e) => !available.includes(e));
  let detail = `available: ${available.join(', ')}${input.claudeCode ? '' : ' (Claude Code is not installed)'}; configured: ${input.configured}`;
  if (missing.length > 0) {
    detail += `; ${missing.join(', ')} is in use but not installed: reinstall with the optional dependencies (npm ci) or switch to lite (NANOCLAW_ENGINE=lite, or nanoclaw groups edit <jid> --engine lite)`;
    return { ok: false, detail };
  }
  return { ok: true, detail };
}

/** Advice, not a failure: on a board under 1 GB, claude-code leaves room for one or two chats. */
export function describeBoard(input: { inUse: readonly Engine[]; totalMemBytes: number }): EngineReport {
  const memMb = Math.round(input.totalMemBytes / (1024 * 1024));
  if (input.totalMemBytes < LITE_RECOMMENDED_BELOW_BYTES && input.inUse.includes('claude-code')) {
    return {
      ok: false,
      detail:
        `${memMb} MB of RAM: lite is recommended (about 50 MB a run instead of 300): ` +
        'set NANOCLAW_ENGINE=lite or "engine": "lite" in config.json, or nanoclaw groups edit <jid> --engine lite',
    };
  }
  return { ok: true, detail: `${memMb} MB of RAM` };
}
