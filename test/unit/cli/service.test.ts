// The service units' exact text, and `service`/`logs` against a recording
// ServiceHost: the systemctl, launchctl and journalctl argv are asserted, the
// unit files are really written and removed in a temp home, and the log file
// is really tailed and followed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { journalctlArgs, lastLines, logsCommand, tailFile } from '../../../src/cli/commands/logs.js';
import { serviceCommand, type CommandResult, type ServiceHost } from '../../../src/cli/commands/service.js';
import {
  launchdPlist,
  shebangLaunch,
  systemdUnit,
  type ServiceSpec,
} from '../../../src/cli/commands/service-unit.js';
import { CliError } from '../../../src/cli/context.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

const spec: ServiceSpec = {
  nodePath: '/usr/bin/node',
  nodeArgs: ['--optimize-for-size', '--max-semi-space-size=1'],
  binPath: '/opt/nanoclaw/bin/nanoclaw.mjs',
  homeDir: '/home/ann/.local/share/nanoclaw',
  configDir: '/home/ann/.config/nanoclaw',
  env: { TZ: 'Europe/Berlin' },
  stopTimeoutSec: 30,
};

describe('systemd unit', () => {
  it('runs start with the data and config dirs, restarts on failure and logs to the journal (user)', () => {
    expect(systemdUnit({ ...spec, scope: 'user' })).toBe(
      [
        '# Written by `nanoclaw service install`; `nanoclaw service uninstall` removes it.',
        '[Unit]',
        'Description=NanoClaw personal assistant',
        '',
        '[Service]',
        'Type=simple',
        'ExecStart=/usr/bin/node --optimize-for-size --max-semi-space-size=1 /opt/nanoclaw/bin/nanoclaw.mjs start',
        'WorkingDirectory=/home/ann/.local/share/nanoclaw',
        'Environment=NANOCLAW_HOME=/home/ann/.local/share/nanoclaw',
        'Environment=NANOCLAW_CONFIG_DIR=/home/ann/.config/nanoclaw',
        'Environment=TZ=Europe/Berlin',
        'Restart=on-failure',
        'RestartSec=5',
        'KillMode=mixed',
        'TimeoutStopSec=30',
        'StandardOutput=journal',
        'StandardError=journal',
        'SyslogIdentifier=nanoclaw',
        '',
        '[Install]',
        'WantedBy=default.target',
        '',
      ].join('\n'),
    );
  });

  it('a system unit names its user, waits for the network and adds only bwrap-safe hardening', () => {
    const unit = systemdUnit({ ...spec, scope: 'system', user: 'ann' });
    expect(unit).toContain('\nUser=ann\n');
    expect(unit).toContain('\nAfter=network-online.target\nWants=network-online.target\n');
    expect(unit).toContain('\nProtectSystem=full\nPrivateTmp=true\n');
    expect(unit).toContain('\nWantedBy=multi-user.target\n');
    // Each of these would stop bubblewrap from building its sandbox.
    for (const setting of [
      'NoNewPrivileges',
      'PrivateUsers',
      'RestrictNamespaces',
      'ProtectProc',
      'ProtectKernelTunables',
      'ProtectControlGroups',
      'UMask',
    ]) {
      expect(unit).not.toMatch(new RegExp(`^${setting}=`, 'm'));
    }
  });

  it('quotes paths with spaces and escapes systemd specifiers and variables', () => {
    const unit = systemdUnit({
      ...spec,
      scope: 'user',
      env: {},
      homeDir: '/data/my "home" 100%',
      binPath: '/opt/$x/bin/nanoclaw.mjs',
    });
    expect(unit).toContain('\nEnvironment="NANOCLAW_HOME=/data/my \\"home\\" 100%%"\n');
    expect(unit).toContain('\nWorkingDirectory=/data/my "home" 100%%\n');
    expect(unit).toContain(' /opt/$$x/bin/nanoclaw.mjs start\n');
    expect(() => systemdUnit({ ...spec, scope: 'user', homeDir: '/a\nExecStartPre=/bin/evil' })).toThrow(
      /line break/,
    );
  });

  it('takes the environment and the node flags from the real bin shebang', () => {
    const firstLine = fs.readFileSync(path.join(REPO_ROOT, 'bin', 'nanoclaw.mjs'), 'utf8').split('\n')[0];
    expect(shebangLaunch(firstLine)).toEqual({
      env: { MALLOC_MMAP_THRESHOLD_: '32768' },
      nodeArgs: ['--optimize-for-size', '--max-semi-space-size=1', '--max-opt=1'],
    });
    // Linux before 5.1 cuts a #! line at 127 characters.
    expect(firstLine.length).toBeLessThan(128);
    expect(shebangLaunch('#!/usr/bin/env -S node --a=1')).toEqual({ env: {}, nodeArgs: ['--a=1'] });
    expect(shebangLaunch('#!/usr/bin/env node')).toEqual({ env: {}, nodeArgs: [] });
  });

  it('passes the shebang environment on to the unit', () => {
    const unit = systemdUnit({ ...spec, scope: 'user', env: { MALLOC_MMAP_THRESHOLD_: '32768' } });
    expect(unit).toContain('Environment=MALLOC_MMAP_THRESHOLD_=32768\n');
  });
});

describe('launchd plist', () => {
  it('keeps the agent alive after a crash and logs to the data dir log file', () => {
    const plist = launchdPlist({ ...spec, homeDir: '/Users/ann/nc & co' });
    expect(plist).toContain('<key>Label</key><string>com.nanoclaw.host</string>');
    expect(plist).toContain(
      [
        '  <array>',
        '    <string>/usr/bin/node</string>',
        '    <string>--optimize-for-size</string>',
        '    <string>--max-semi-space-size=1</string>',
        '    <string>/opt/nanoclaw/bin/nanoclaw.mjs</string>',
        '    <string>start</string>',
        '  </array>',
      ].join('\n'),
    );
    expect(plist).toContain('    <key>NANOCLAW_HOME</key><string>/Users/ann/nc &amp; co</string>');
    expect(plist).toContain('    <key>NANOCLAW_CONFIG_DIR</key><string>/home/ann/.config/nanoclaw</string>');
    expect(plist).toContain(
      '  <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key><false/>\n  </dict>',
    );
    expect(plist).toContain('  <key>RunAtLoad</key><true/>');
    expect(plist).toContain(
      '  <key>StandardOutPath</key><string>/Users/ann/nc &amp; co/logs/nanoclaw.log</string>',
    );
    expect(plist).toContain(
      '  <key>StandardErrorPath</key><string>/Users/ann/nc &amp; co/logs/nanoclaw.log</string>',
    );
  });
});

// ---- the commands, with a recording host ----------------------------------------

let root: string;
let config: Config;

interface Recorder extends ServiceHost {
  calls: { command: string; args: string[]; inheritStdio: boolean }[];
  out: string[];
}

function fakeHost(
  overrides: Partial<ServiceHost> = {},
  answer: (command: string, args: readonly string[]) => CommandResult | null = () => ({
    code: 0,
    stdout: '',
    stderr: '',
  }),
): Recorder {
  const calls: Recorder['calls'] = [];
  const out: string[] = [];
  return {
    platform: 'linux',
    env: {},
    uid: 1000,
    userName: 'ann',
    userHome: path.join(root, 'home'),
    nodePath: '/usr/bin/node',
    packageRoot: REPO_ROOT,
    systemUnitDir: path.join(root, 'etc-systemd'),
    run: (command, args, options) => {
      calls.push({ command, args: [...args], inheritStdio: options?.inheritStdio ?? false });
      return Promise.resolve(answer(command, args));
    },
    print: (line) => out.push(line),
    calls,
    out,
    ...overrides,
  };
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'nanoclaw-service-'));
  config = loadConfig({
    env: {
      NANOCLAW_HOME: path.join(root, 'data'),
      NANOCLAW_CONFIG_DIR: path.join(root, 'policy'),
      TZ: 'UTC',
    },
    cwd: root,
    userHome: path.join(root, 'home'),
  });
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const userUnit = () => path.join(root, 'home', '.config', 'systemd', 'user', 'nanoclaw.service');
const systemUnit = () => path.join(root, 'etc-systemd', 'nanoclaw.service');

describe('nanoclaw service', () => {
  it('install writes a user unit for this data dir and enables and (re)starts it', async () => {
    const host = fakeHost({ env: { ANTHROPIC_API_KEY: 'sk-ant-secret', ASSISTANT_NAME: 'Bob' } });
    expect(await serviceCommand(['install'], host, () => config)).toBe(0);
    const unit = fs.readFileSync(userUnit(), 'utf8');
    expect(unit).toContain(`\nEnvironment=NANOCLAW_HOME=${path.join(root, 'data')}\n`);
    expect(unit).toContain(`\nEnvironment=NANOCLAW_CONFIG_DIR=${path.join(root, 'policy')}\n`);
    expect(unit).toContain('\nEnvironment=ASSISTANT_NAME=Bob\n');
    // What the bin's first line sets for node, the unit sets too (it starts node itself).
    expect(unit).toContain('\nEnvironment=MALLOC_MMAP_THRESHOLD_=32768\n');
    expect(unit).toContain(
      `\nExecStart=/usr/bin/node --optimize-for-size --max-semi-space-size=1 --max-opt=1 ${REPO_ROOT}/bin/nanoclaw.mjs start\n`,
    );
    expect(unit).not.toContain('sk-ant-secret');
    expect(host.calls.map((c) => [c.command, ...c.args])).toEqual([
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', 'nanoclaw.service'],
      ['systemctl', '--user', 'restart', 'nanoclaw.service'],
    ]);
    const said = host.out.join('\n');
    expect(said).toContain('credential comes from this shell');
    expect(said).toContain('run nanoclaw auth whatsapp first');
    expect(said).toContain('loginctl enable-linger ann');
  });

  it('root gets a system unit with User=, and --dry-run prints it without writing or running anything', async () => {
    const dry = fakeHost({ uid: 0, userName: 'root' });
    expect(await serviceCommand(['install', '--dry-run'], dry, () => config)).toBe(0);
    expect(fs.existsSync(systemUnit())).toBe(false);
    expect(dry.calls).toEqual([]);
    expect(dry.out[0]).toBe(`# would write ${systemUnit()}:`);
    expect(dry.out).toContain('User=root');
    expect(dry.out.slice(-3)).toEqual([
      'systemctl daemon-reload',
      'systemctl enable nanoclaw.service',
      'systemctl restart nanoclaw.service',
    ]);

    const real = fakeHost({ uid: 0, userName: 'root' });
    expect(await serviceCommand(['install'], real, () => config)).toBe(0);
    expect(fs.readFileSync(systemUnit(), 'utf8')).toContain('\nUser=root\n');
    expect(real.calls[0].args).toEqual(['daemon-reload']);
  });

  it('without systemctl it writes the unit and prints the commands to run', async () => {
    const host = fakeHost({}, () => null);
    expect(await serviceCommand(['install', '--user'], host, () => config)).toBe(0);
    expect(fs.existsSync(userUnit())).toBe(true);
    expect(host.out).toContain('systemctl is not available here; run these where it is:');
    expect(host.out).toContain('  systemctl --user enable nanoclaw.service');
  });

  it('a failing systemctl step is reported with what is left to run, exit 1', async () => {
    const host = fakeHost({}, (_c, args) =>
      args.includes('enable')
        ? { code: 1, stdout: '', stderr: 'Failed to connect to bus' }
        : { code: 0, stdout: '', stderr: '' },
    );
    expect(await serviceCommand(['install'], host, () => config)).toBe(1);
    expect(host.out).toContain(
      'systemctl --user enable nanoclaw.service failed (exit 1): Failed to connect to bus',
    );
    expect(host.out.slice(-2)).toEqual([
      '  systemctl --user enable nanoclaw.service',
      '  systemctl --user restart nanoclaw.service',
    ]);
  });

  it('refuses --user with --system, and an unknown subcommand, as usage errors', async () => {
    await expect(serviceCommand(['install', '--user', '--system'], fakeHost(), () => config)).rejects.toThrow(
      /choose one of --user and --system/,
    );
    const err = await serviceCommand(['restart'], fakeHost(), () => config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(2);
  });

  it('status says not installed (exit 3), then the unit path and systemctl is-active state', async () => {
    const none = fakeHost();
    expect(await serviceCommand(['status'], none, () => config)).toBe(3);
    expect(none.out).toEqual(['not installed; nanoclaw service install sets it up']);

    await serviceCommand(['install'], fakeHost(), () => config);
    const active = fakeHost({}, () => ({ code: 0, stdout: 'active\n', stderr: '' }));
    expect(await serviceCommand(['status'], active, () => config)).toBe(0);
    expect(active.calls.map((c) => [c.command, ...c.args])).toEqual([
      ['systemctl', '--user', 'is-active', 'nanoclaw.service'],
    ]);
    expect(active.out).toEqual([`systemd user unit: ${userUnit()}`, '  state: active']);

    const failed = fakeHost({}, () => ({ code: 3, stdout: 'failed\n', stderr: '' }));
    expect(await serviceCommand(['status'], failed, () => config)).toBe(3);
    expect(failed.out).toContain('  state: failed');
  });

  it('uninstall stops, disables and removes the unit, and keeps the data', async () => {
    await serviceCommand(['install'], fakeHost(), () => config);
    fs.mkdirSync(config.homeDir, { recursive: true });
    const host = fakeHost();
    expect(await serviceCommand(['uninstall'], host, () => config)).toBe(0);
    expect(fs.existsSync(userUnit())).toBe(false);
    expect(fs.existsSync(config.homeDir)).toBe(true);
    expect(host.calls.map((c) => [c.command, ...c.args])).toEqual([
      ['systemctl', '--user', 'disable', '--now', 'nanoclaw.service'],
      ['systemctl', '--user', 'daemon-reload'],
    ]);
    const again = fakeHost();
    expect(await serviceCommand(['uninstall'], again, () => config)).toBe(0);
    expect(again.out).toEqual(['no nanoclaw service is installed; nothing to remove']);
  });

  it('on macOS installs a LaunchAgent plist and bootstraps it into the gui domain', async () => {
    const host = fakeHost({ platform: 'darwin', uid: 501 });
    expect(await serviceCommand(['install'], host, () => config)).toBe(0);
    const plist = path.join(root, 'home', 'Library', 'LaunchAgents', 'com.nanoclaw.host.plist');
    expect(fs.readFileSync(plist, 'utf8')).toContain(
      `<key>NANOCLAW_HOME</key><string>${config.homeDir}</string>`,
    );
    expect(fs.existsSync(config.paths.logsDir)).toBe(true);
    expect(host.calls.map((c) => [c.command, ...c.args])).toEqual([
      ['launchctl', 'bootout', 'gui/501/com.nanoclaw.host'],
      ['launchctl', 'bootstrap', 'gui/501', plist],
    ]);
    await expect(serviceCommand(['install', '--system'], host, () => config)).rejects.toThrow(/LaunchAgent/);
  });
});

describe('nanoclaw logs', () => {
  it('follows the journal of an installed unit (user scope), output straight to the terminal', async () => {
    await serviceCommand(['install'], fakeHost(), () => config);
    const host = fakeHost();
    expect(await logsCommand(['-f', '--lines', '50'], host, () => config)).toBe(0);
    expect(host.calls).toEqual([
      {
        command: 'journalctl',
        args: ['--user', '-u', 'nanoclaw.service', '-n', '50', '--no-pager', '-f'],
        inheritStdio: true,
      },
    ]);
    expect(journalctlArgs('system', 100, false)).toEqual([
      '-u',
      'nanoclaw.service',
      '-n',
      '100',
      '--no-pager',
    ]);
  });

  it('without a unit prints the last lines of the log file', async () => {
    fs.mkdirSync(config.paths.logsDir, { recursive: true });
    const file = path.join(config.paths.logsDir, 'nanoclaw.log');
    fs.writeFileSync(file, Array.from({ length: 150 }, (_, i) => `line ${i}`).join('\n') + '\n');
    const host = fakeHost();
    expect(await logsCommand([], host, () => config)).toBe(0);
    expect(host.out).toHaveLength(100);
    expect(host.out[0]).toBe('line 50');
    expect(host.out[99]).toBe('line 149');
    const three = fakeHost();
    expect(await logsCommand(['--lines', '3'], three, () => config)).toBe(0);
    expect(three.out).toEqual(['line 147', 'line 148', 'line 149']);
    expect(host.calls).toEqual([]);
    await expect(logsCommand(['--lines', 'many'], fakeHost(), () => config)).rejects.toThrow(
      /--lines wants a whole number/,
    );
  });

  it('says how to see logs when there is neither a unit nor a log file', async () => {
    const host = fakeHost();
    expect(await logsCommand([], host, () => config)).toBe(1);
    expect(host.out[0]).toMatch(/^no log yet: no systemd service is installed \(nanoclaw service install\)/);
  });

  it('reads the last lines of a large file from its end, across chunk boundaries and without a final newline', () => {
    const file = path.join(root, 'big.log');
    const long = 'x'.repeat(1000);
    fs.writeFileSync(file, Array.from({ length: 300 }, (_, i) => `${i} ${long}`).join('\n'));
    const { lines } = lastLines(file, 100);
    expect(lines).toHaveLength(100);
    expect(lines[0]).toBe(`200 ${long}`);
    expect(lines[99]).toBe(`299 ${long}`);
    expect(lastLines(file, 0).lines).toEqual([]);
  });

  it('follows appended lines, a truncated file and a rotated (recreated) one', async () => {
    const file = path.join(root, 'nanoclaw.log');
    fs.writeFileSync(file, 'old 1\nold 2\n');
    const out: string[] = [];
    const waiters: (() => void)[] = [];
    const print = (line: string): void => {
      out.push(line);
      waiters.splice(0).forEach((wake) => wake());
    };
    const seen = async (line: string): Promise<void> => {
      while (!out.includes(line)) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    const stop = new AbortController();
    const following = tailFile(file, { lines: 1, follow: true, print, signal: stop.signal });
    expect(out).toEqual(['old 2']);

    fs.appendFileSync(file, 'new 1\nhalf');
    await seen('new 1');
    fs.appendFileSync(file, ' done\n');
    await seen('half done');

    fs.writeFileSync(file, 'after truncate\n');
    await seen('after truncate');

    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, 'rotated\n');
    await seen('rotated');

    stop.abort();
    await following;
    expect(out).toEqual(['old 2', 'new 1', 'half done', 'after truncate', 'rotated']);
  });
});
