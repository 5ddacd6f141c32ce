// The README's install puts `nanoclaw` on PATH: `npm link` of the checkout,
// here into a temp global prefix so the machine's own global tree is untouched. The linked bin must find its dist/ and runner
// bundle through the symlinks, from any directory, and the data dir must not
// follow the current directory.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, REPO_ROOT, type CliResult } from '../support/cli.js';

let prefix: string;
let elsewhere: string;

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  assertBuilt();
  prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-prefix-'));
  elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-elsewhere-'));
  // The README's `npm link`, with npm's global prefix pointed at a temp dir.
  const npm = await run(
    'npm',
    ['link', '--offline', '--no-audit', '--no-fund'],
    { ...process.env, npm_config_prefix: prefix },
    REPO_ROOT,
  );
  expect(npm.code, npm.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  for (const dir of [prefix, elsewhere]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('installed on PATH', () => {
  it('runs --version by name from another directory', async () => {
    const env = { PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`, HOME: elsewhere };
    const result = await run('nanoclaw', ['--version'], env, elsewhere);
    expect(result.code, result.stderr).toBe(0);
    const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(result.stdout.trim()).toBe(version);
  });

  it('doctor from another directory names the fixed data and config dirs first and finds the runner bundle', async () => {
    const env = {
      PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`,
      HOME: elsewhere,
      XDG_DATA_HOME: path.join(elsewhere, 'xdg-data'),
      XDG_CONFIG_HOME: path.join(elsewhere, 'xdg-config'),
      NANOCLAW_ENGINE: 'echo',
      TZ: 'UTC',
    };
    const cwd = fs.mkdtempSync(path.join(elsewhere, 'some-project-'));
    const result = await run('nanoclaw', ['doctor'], env, cwd);
    const lines = result.stdout.split('\n');
    expect(lines.slice(0, 2), result.stderr).toEqual([
      `data dir: ${path.join(elsewhere, 'xdg-data', 'nanoclaw')}`,
      `config dir: ${path.join(elsewhere, 'xdg-config', 'nanoclaw')}`,
    ]);
    expect(result.stdout).toContain('ok   runner: dist/runner.mjs present');
    // Created on first use, and nothing was written into the current directory.
    expect(fs.statSync(path.join(elsewhere, 'xdg-data', 'nanoclaw')).mode & 0o777).toBe(0o711);
    expect(fs.readdirSync(cwd)).toEqual([]);
  }, 60_000);

  it('points at a data dir an older version left in the current directory, and does not use it', async () => {
    const old = fs.mkdtempSync(path.join(elsewhere, 'old-checkout-'));
    fs.mkdirSync(path.join(old, 'store'));
    fs.writeFileSync(path.join(old, 'store', 'nanoclaw.db'), '');
    const data = path.join(elsewhere, 'xdg-data-2');
    const env = {
      PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`,
      HOME: elsewhere,
      XDG_DATA_HOME: data,
      NANOCLAW_ENGINE: 'echo',
      TZ: 'UTC',
    };
    const result = await run('nanoclaw', ['doctor'], env, old);
    expect(result.stderr).toContain(
      `nanoclaw: note: ${old} holds an older data dir, but the data dir is now ${path.join(data, 'nanoclaw')}; set NANOCLAW_HOME=${old}`,
    );
    expect(result.stdout).toMatch(new RegExp(`^warn old data dir: ${old} holds a data dir from before`, 'm'));
    expect(fs.statSync(path.join(old, 'store', 'nanoclaw.db')).size).toBe(0);
  }, 60_000);
});
