// The systemd units `nanoclaw service install` writes, checked by systemd's own
// parser (`systemd-analyze verify`, which needs no running systemd): quoting
// that looks right to us but that systemd reads differently fails here.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shebangLaunch, systemdUnit, type ServiceScope } from '../../src/cli/commands/service-unit.js';
import { REPO_ROOT } from '../support/cli.js';

let root: string;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-unit-verify-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function verify(scope: ServiceScope, file: string): Promise<{ code: number | null; output: string }> {
  const runtimeDir = path.join(root, 'runtime');
  fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  return new Promise((resolve, reject) => {
    const child = spawn('systemd-analyze', [...(scope === 'user' ? ['--user'] : []), 'verify', file], {
      // A user manager wants a runtime dir; verification needs nothing else of a session.
      env: { PATH: process.env.PATH, XDG_RUNTIME_DIR: runtimeDir, SYSTEMD_LOG_LEVEL: 'warning' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) =>
      reject(new Error(`systemd-analyze is needed for this test (apt-get install systemd): ${err.message}`)),
    );
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('systemd-analyze verify', () => {
  it.each(['user', 'system'] as const)(
    'accepts the %s unit, with a data dir holding spaces, quotes, % and $',
    async (scope) => {
      const homeDir = path.join(root, `data dir "${scope}" 100% $HOME`);
      fs.mkdirSync(homeDir, { recursive: true });
      const binPath = path.join(REPO_ROOT, 'bin', 'nanoclaw.mjs');
      const unit = systemdUnit({
        scope,
        ...(scope === 'system' ? { user: os.userInfo().username } : {}),
        nodePath: process.execPath,
        nodeArgs: shebangLaunch(fs.readFileSync(binPath, 'utf8').split('\n')[0]).nodeArgs,
        binPath,
        homeDir,
        configDir: path.join(root, 'config dir'),
        env: { ASSISTANT_NAME: 'Andy', TZ: 'Europe/Berlin' },
        stopTimeoutSec: 30,
      });
      const file = path.join(root, `${scope}`, 'nanoclaw.service');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, unit);
      const result = await verify(scope, file);
      expect(result.output.trim(), unit).toBe('');
      expect(result.code, result.output).toBe(0);
    },
    60_000,
  );
});
