// `nanoclaw service install|uninstall|status`: runs the host under the system's
// service manager (systemd on Linux, launchd on macOS) with the data and config
// dirs this command resolves, restarting it after a crash. Everything that
// touches the machine (the manager's commands, where units live) comes in
// through `ServiceHost`, so tests assert the argv without a running systemd.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCredential, type Config } from '../../config/config.js';
import { engineUsesModel } from '../../core/protocol.js';
import { readLinkedAccount } from '../../channels/whatsapp/auth.js';
import type { Print } from '../admin.js';
import { CliError } from '../context.js';
import { findPackageRoot } from '../package-root.js';
import { parseCommandArgs, usageError } from './args.js';
import {
  LAUNCHD_LABEL,
  PASSED_ENV_VARS,
  SYSTEMD_UNIT_NAME,
  launchdPlist,
  shebangLaunch,
  stopTimeoutSec,
  systemdUnit,
  type ServiceScope,
  type ServiceSpec,
} from './service-unit.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ServiceHost {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  uid: number;
  userName: string;
  userHome: string;
  /** The node binary the service runs (this one). */
  nodePath: string;
  /** The installed package: bin/nanoclaw.mjs and dist/ live here. */
  packageRoot: string;
  /** Where system units go: /etc/systemd/system. */
  systemUnitDir: string;
  /**
   * Runs a command to its end. With `inheritStdio` its output goes straight to
   * this terminal (journalctl -f). Null when the command is not installed.
   */
  run(
    command: string,
    args: readonly string[],
    options?: { inheritStdio?: boolean },
  ): Promise<CommandResult | null>;
  print: Print;
}

export function runCommand(
  command: string,
  args: readonly string[],
  options: { inheritStdio?: boolean } = {},
): Promise<CommandResult | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: options.inheritStdio ? 'inherit' : 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(null) : reject(err)));
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal === 'SIGINT' ? 0 : 1), stdout, stderr }),
    );
  });
}

export function realServiceHost(env: NodeJS.ProcessEnv, print: Print): ServiceHost {
  return {
    platform: process.platform,
    env,
    uid: process.getuid?.() ?? 0,
    userName: os.userInfo().username,
    userHome: os.homedir(),
    nodePath: process.execPath,
    packageRoot: findPackageRoot(import.meta.url),
    systemUnitDir: '/etc/systemd/system',
    run: runCommand,
    print,
  };
}

export const SERVICE_SUBCOMMAND_USAGE: Record<string, string> = {
  install: `usage: nanoclaw service install [--user|--system] [--dry-run]

  Runs \`nanoclaw start\` as a service with this data dir and config dir,
  restarted after a crash, logging to the journal (launchd: to the log file).

  --user      a systemd user unit in ~/.config/systemd/user (default, unless root)
  --system    a system unit in /etc/systemd/system running as you (default for root)
  --dry-run   print the unit and the commands; write no unit, run nothing`,
  uninstall: `usage: nanoclaw service uninstall [--user|--system]

  Stops and disables the service and deletes its unit; your data stays.`,
  status: `usage: nanoclaw service status

  Whether a unit is installed, where, and whether it is running (exit 0 when active, else 3).`,
};

export const SERVICE_USAGE = `usage: nanoclaw service install|uninstall|status

${Object.values(SERVICE_SUBCOMMAND_USAGE).join('\n\n')}`;

export type InstalledService =
  { manager: 'systemd'; scope: ServiceScope; file: string } | { manager: 'launchd'; file: string };

function configHome(host: ServiceHost): string {
  const xdg = host.env.XDG_CONFIG_HOME?.trim();
  return xdg && path.isAbsolute(xdg) ? xdg : path.join(host.userHome, '.config');
}

export function unitFile(host: ServiceHost, scope: ServiceScope): string {
  return scope === 'system'
    ? path.join(host.systemUnitDir, SYSTEMD_UNIT_NAME)
    : path.join(configHome(host), 'systemd', 'user', SYSTEMD_UNIT_NAME);
}

export function plistFile(host: ServiceHost): string {
  return path.join(host.userHome, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
}

/** The service definitions present on this machine, user unit first. */
export function installedServices(host: ServiceHost): InstalledService[] {
  if (host.platform === 'darwin') {
    const file = plistFile(host);
    return fs.existsSync(file) ? [{ manager: 'launchd', file }] : [];
  }
  return (['user', 'system'] as const)
    .map((scope) => ({ manager: 'systemd' as const, scope, file: unitFile(host, scope) }))
    .filter((unit) => fs.existsSync(unit.file));
}

export function systemctlArgs(scope: ServiceScope, ...args: string[]): string[] {
  return scope === 'user' ? ['--user', ...args] : args;
}

function serviceSpec(host: ServiceHost, config: Config): ServiceSpec {
  const binPath = path.join(host.packageRoot, 'bin', 'nanoclaw.mjs');
  const firstLine = fs.readFileSync(binPath, 'utf8').split('\n', 1)[0];
  const launch = shebangLaunch(firstLine);
  const env: Record<string, string> = { ...launch.env };
  for (const name of PASSED_ENV_VARS) {
    const value = host.env[name]?.trim();
    if (value) env[name] = value;
  }
  return {
    nodePath: host.nodePath,
    nodeArgs: launch.nodeArgs,
    binPath,
    homeDir: config.homeDir,
    configDir: config.configDir,
    env,
    stopTimeoutSec: stopTimeoutSec(config.shutdownGraceMs),
  };
}

function scopeOption(command: string, values: { user?: boolean; system?: boolean }): ServiceScope | null {
  if (values.user && values.system) throw usageError(command, 'choose one of --user and --system');
  return values.system ? 'system' : values.user ? 'user' : null;
}

function shellLine(command: string, args: readonly string[]): string {
  return [command, ...args]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** Runs the manager's commands in order; on the first failure says what failed and what is left to run. */
async function runSteps(host: ServiceHost, steps: readonly (readonly [string, string[]])[]): Promise<number> {
  for (const [index, [command, args]] of steps.entries()) {
    const result = await host.run(command, args);
    if (result === null) {
      host.print(`${command} is not available here; run these where it is:`);
      for (const [c, a] of steps.slice(index)) host.print(`  ${shellLine(c, a)}`);
      return 0;
    }
    if (result.code !== 0) {
      host.print(
        `${shellLine(command, args)} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`,
      );
      host.print('fix that, then run:');
      for (const [c, a] of steps.slice(index)) host.print(`  ${shellLine(c, a)}`);
      return 1;
    }
  }
  return 0;
}

function writeServiceFile(file: string, content: string, scope: ServiceScope | null): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content, { mode: 0o644 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const hint =
      scope === 'system'
        ? 'a system unit needs root: run it with sudo, or install a user unit with --user'
        : 'check that you can write there';
    throw new CliError(`nanoclaw service: cannot write ${file} (${code}); ${hint}`);
  }
}

/** What the service itself cannot do for the owner: it has no terminal and no shell environment. */
function readinessNotes(host: ServiceHost, config: Config): void {
  if (engineUsesModel(config.engine)) {
    let credential;
    try {
      credential = loadCredential({ env: host.env, homeDir: config.homeDir });
    } catch (err) {
      host.print(
        `note: ${err instanceof Error ? err.message : String(err)}; the service will not find its credential`,
      );
      return;
    }
    if (credential === null) {
      host.print(
        `note: no model credential yet; put ANTHROPIC_API_KEY=… (or CLAUDE_CODE_OAUTH_TOKEN=…) in ${path.join(config.homeDir, '.env')} (chmod 600)`,
      );
    } else if (credential.source === 'env') {
      host.print(
        `note: your credential comes from this shell, which the service does not see; put it in ${path.join(config.homeDir, '.env')} (chmod 600)`,
      );
    }
  }
  if (!readLinkedAccount(config.paths.authDir)) {
    host.print(
      'note: no WhatsApp account is linked; the service cannot show a QR code, so run nanoclaw auth whatsapp first',
    );
  }
}

async function install(args: string[], host: ServiceHost, loadConfig: () => Config): Promise<number> {
  const { values } = parseCommandArgs('service install', {
    args,
    options: {
      user: { type: 'boolean' },
      system: { type: 'boolean' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const dryRun = values['dry-run'];
  const config = loadConfig();
  const spec = serviceSpec(host, config);

  if (host.platform === 'darwin') {
    if (values.system)
      throw usageError(
        'service install',
        'on macOS the service is a LaunchAgent of your user; drop --system',
      );
    const file = plistFile(host);
    const target = `gui/${host.uid}`;
    const steps: [string, string[]][] = [['launchctl', ['bootstrap', target, file]]];
    const content = launchdPlist(spec);
    if (dryRun) return printDryRun(host, file, content, steps);
    writeServiceFile(file, content, 'user');
    fs.mkdirSync(config.paths.logsDir, { recursive: true });
    // A reinstall replaces the loaded job; when none is loaded this fails, which is fine.
    await host.run('launchctl', ['bootout', `${target}/${LAUNCHD_LABEL}`]);
    host.print(`wrote ${file}`);
    readinessNotes(host, config);
    const code = await runSteps(host, steps);
    if (code === 0) host.print(`logs: nanoclaw logs -f (${path.join(config.paths.logsDir, 'nanoclaw.log')})`);
    return code;
  }

  const scope = scopeOption('service install', values) ?? (host.uid === 0 ? 'system' : 'user');
  const file = unitFile(host, scope);
  const content = systemdUnit({ ...spec, scope, ...(scope === 'system' ? { user: host.userName } : {}) });
  // restart, not start: after an update a reinstall must replace the running host.
  const steps: [string, string[]][] = [
    ['systemctl', systemctlArgs(scope, 'daemon-reload')],
    ['systemctl', systemctlArgs(scope, 'enable', SYSTEMD_UNIT_NAME)],
    ['systemctl', systemctlArgs(scope, 'restart', SYSTEMD_UNIT_NAME)],
  ];
  if (dryRun) return printDryRun(host, file, content, steps);
  writeServiceFile(file, content, scope);
  host.print(`wrote ${file} (data dir ${config.homeDir}, config dir ${config.configDir})`);
  readinessNotes(host, config);
  const code = await runSteps(host, steps);
  if (code === 0) {
    host.print(`status: nanoclaw service status; logs: nanoclaw logs -f`);
    if (scope === 'user') {
      host.print(
        `a user service stops when you log out and waits for your login after a reboot; to run it always: loginctl enable-linger ${host.userName}`,
      );
    }
  }
  return code;
}

function printDryRun(
  host: ServiceHost,
  file: string,
  content: string,
  steps: readonly (readonly [string, string[]])[],
): number {
  host.print(`# would write ${file}:`);
  for (const line of content.trimEnd().split('\n')) host.print(line);
  host.print('# then run:');
  for (const [command, args] of steps) host.print(shellLine(command, args));
  return 0;
}

async function uninstall(args: string[], host: ServiceHost): Promise<number> {
  const { values } = parseCommandArgs('service uninstall', {
    args,
    options: { user: { type: 'boolean' }, system: { type: 'boolean' } },
  });
  const scope = scopeOption('service uninstall', values);
  const services = installedServices(host).filter(
    (s) => scope === null || (s.manager === 'systemd' && s.scope === scope),
  );
  if (services.length === 0) {
    host.print('no nanoclaw service is installed; nothing to remove');
    return 0;
  }
  let code = 0;
  for (const service of services) {
    if (service.manager === 'launchd') {
      await host.run('launchctl', ['bootout', `gui/${host.uid}/${LAUNCHD_LABEL}`]);
      removeFile(service.file, null);
      host.print(`removed ${service.file}`);
      continue;
    }
    // disable --now fails when the unit is already gone from systemd's view; the file goes regardless.
    const stop = await host.run(
      'systemctl',
      systemctlArgs(service.scope, 'disable', '--now', SYSTEMD_UNIT_NAME),
    );
    removeFile(service.file, service.scope);
    host.print(`removed ${service.file}`);
    if (stop === null) {
      host.print(`systemctl is not available here; the unit file is gone, stop any running host yourself`);
      continue;
    }
    code = Math.max(
      code,
      await runSteps(host, [['systemctl', systemctlArgs(service.scope, 'daemon-reload')]]),
    );
  }
  host.print('your data dir and config dir are untouched');
  return code;
}

function removeFile(file: string, scope: ServiceScope | null): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const hint =
      scope === 'system' ? 'a system unit needs root to remove: run it with sudo' : 'check its permissions';
    throw new CliError(`nanoclaw service: cannot remove ${file} (${code}); ${hint}`);
  }
}

async function status(args: string[], host: ServiceHost): Promise<number> {
  parseCommandArgs('service status', { args, options: {} });
  const services = installedServices(host);
  if (services.length === 0) {
    host.print('not installed; nanoclaw service install sets it up');
    return 3;
  }
  let active = false;
  for (const service of services) {
    if (service.manager === 'launchd') {
      const result = await host.run('launchctl', ['print', `gui/${host.uid}/${LAUNCHD_LABEL}`]);
      const state =
        result === null
          ? 'unknown (launchctl not found)'
          : result.code !== 0
            ? 'not loaded'
            : (/^\s*state = (.+)$/m.exec(result.stdout)?.[1] ?? 'loaded');
      active ||= state === 'running';
      host.print(`launchd agent ${LAUNCHD_LABEL}: ${service.file}`);
      host.print(`  state: ${state}`);
      continue;
    }
    const result = await host.run('systemctl', systemctlArgs(service.scope, 'is-active', SYSTEMD_UNIT_NAME));
    // is-active prints the state and exits non-zero for anything but active.
    const state =
      result === null
        ? 'unknown (systemctl not found)'
        : result.stdout.trim() || `unknown (${result.stderr.trim()})`;
    active ||= state === 'active';
    host.print(`systemd ${service.scope} unit: ${service.file}`);
    host.print(`  state: ${state}`);
  }
  return active ? 0 : 3;
}

export async function serviceCommand(
  args: string[],
  host: ServiceHost,
  config: () => Config,
): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'install':
      return install(rest, host, config);
    case 'uninstall':
      return uninstall(rest, host);
    case 'status':
      return status(rest, host);
    default:
      throw usageError(
        'service',
        sub === undefined ? 'say install, uninstall or status' : `unknown subcommand "${sub}"`,
      );
  }
}
