// Engine availability and the doctor's advice: a lite-only install (no Claude
// Code package) and a small board.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claudeCodeInstalled, describeBoard, describeEngines } from '../../../src/cli/engines.js';

const GIB = 1024 * 1024 * 1024;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engines-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function install(...packages: string[]): void {
  for (const p of packages) {
    fs.mkdirSync(path.join(dir, '@anthropic-ai', p), { recursive: true });
    fs.writeFileSync(path.join(dir, '@anthropic-ai', p, 'package.json'), '{}');
  }
}

describe('claudeCodeInstalled', () => {
  it('needs both the SDK and the native package of this platform', () => {
    expect(claudeCodeInstalled(dir, 'linux', 'x64')).toBe(false);
    install('claude-agent-sdk');
    expect(claudeCodeInstalled(dir, 'linux', 'x64')).toBe(false);
    install('claude-agent-sdk-linux-arm64');
    expect(claudeCodeInstalled(dir, 'linux', 'x64')).toBe(false);
    install('claude-agent-sdk-linux-x64-musl');
    expect(claudeCodeInstalled(dir, 'linux', 'x64')).toBe(true);
  });

  it('sees the real install of this checkout', () => {
    expect(claudeCodeInstalled(path.resolve('node_modules'))).toBe(true);
  });
});

describe('describeEngines', () => {
  const base = { configured: 'lite' as const, groupEngines: [], claudeCode: true };

  it('lists what is available and is happy when the engines in use are installed', () => {
    expect(describeEngines(base)).toEqual({
      ok: true,
      detail: 'available: lite, claude-code, echo; configured: lite',
    });
  });

  it('fails when a group uses claude-code on a lite-only install, saying what to do', () => {
    const report = describeEngines({ ...base, claudeCode: false, groupEngines: ['claude-code'] });
    expect(report.ok).toBe(false);
    expect(report.detail).toMatch(
      /^available: lite, echo \(Claude Code is not installed\); configured: lite; claude-code is in use but not installed: .*--engine lite/,
    );
  });
});

describe('describeBoard', () => {
  it('recommends lite under 1 GB when claude-code is in use, not otherwise', () => {
    const small = describeBoard({ inUse: ['lite', 'claude-code'], totalMemBytes: 512 * 1024 * 1024 });
    expect(small.ok).toBe(false);
    expect(small.detail).toMatch(/^512 MB of RAM: lite is recommended .* NANOCLAW_ENGINE=lite/);
    expect(describeBoard({ inUse: ['lite'], totalMemBytes: 512 * 1024 * 1024 })).toEqual({
      ok: true,
      detail: '512 MB of RAM',
    });
    expect(describeBoard({ inUse: ['claude-code'], totalMemBytes: 2 * GIB }).ok).toBe(true);
  });
});
