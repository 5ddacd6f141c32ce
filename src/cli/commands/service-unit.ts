// The text of the service definitions `nanoclaw service install` writes: a
// systemd unit (user or system) and a launchd plist. Pure functions of their
// inputs, so the exact contents are tested without a service manager.

import path from 'node:path';

export const SERVICE_NAME = 'nanoclaw';
export const SYSTEMD_UNIT_NAME = `${SERVICE_NAME}.service`;
export const LAUNCHD_LABEL = 'com.nanoclaw.host';
export const LOG_FILE_NAME = 'nanoclaw.log';

export type ServiceScope = 'user' | 'system';

/**
 * Settings that shape the host and are safe to write into a unit file (which may
 * be world-readable): copied from the installing shell so the service behaves
 * like `nanoclaw start` there. Credentials are never copied; they belong in
 * `<data dir>/.env`.
 */
export const PASSED_ENV_VARS = [
  'ASSISTANT_NAME',
  'TZ',
  'NANOCLAW_SANDBOX',
  'NANOCLAW_ENGINE',
  'NANOCLAW_MODEL',
  'ANTHROPIC_BASE_URL',
  'LOG_LEVEL',
] as const;

export interface ServiceSpec {
  /** Absolute path of the node binary that runs the host. */
  nodePath: string;
  /** V8 flags the bin's shebang asks for (a unit runs node directly, so the shebang is not read). */
  nodeArgs: readonly string[];
  /** Absolute path of bin/nanoclaw.mjs. */
  binPath: string;
  homeDir: string;
  configDir: string;
  /** Extra environment, e.g. from PASSED_ENV_VARS; never secrets. */
  env: Readonly<Record<string, string>>;
  /** Seconds systemd waits for a clean stop before it kills what is left. */
  stopTimeoutSec: number;
}

/** Seconds between a crash and the restart: quick, but not a busy loop on a persistent fault. */
export const RESTART_DELAY_SEC = 5;

/** How long a stop may take: the host's own grace for runs, plus room to close the store and channel. */
export function stopTimeoutSec(shutdownGraceMs: number): number {
  return Math.ceil(shutdownGraceMs / 1000) + 20;
}

/** How the command's first line starts node: its environment assignments and node flags. */
export interface ShebangLaunch {
  env: Record<string, string>;
  nodeArgs: string[];
}

/**
 * `#!/usr/bin/env -S NAME=value … node --flag …`, taken apart; nothing for any other
 * first line. A service or a benchmark that starts node itself passes both on.
 */
export function shebangLaunch(firstLine: string): ShebangLaunch {
  const match = /^#!\S*env\s+-S\s+((?:[A-Za-z_]\w*=\S*\s+)*)\S*node\s+(.*)$/.exec(firstLine.trim());
  if (!match) return { env: {}, nodeArgs: [] };
  const env: Record<string, string> = {};
  for (const assignment of match[1].split(/\s+/).filter(Boolean)) {
    const at = assignment.indexOf('=');
    env[assignment.slice(0, at)] = assignment.slice(at + 1);
  }
  return { env, nodeArgs: match[2].split(/\s+/).filter((a) => a.startsWith('--')) };
}

function assertOneLine(value: string): void {
  // A newline would end the directive and let the rest be read as a new one.
  if (/[\n\r\0]/.test(value))
    throw new Error(`a path or value with a line break cannot go into a unit: ${JSON.stringify(value)}`);
}

/** One systemd word: bare when safe, else double-quoted; `%` is systemd's specifier escape. */
function systemdWord(value: string, inExec: boolean): string {
  assertOneLine(value);
  let word = value.replace(/%/g, '%%');
  if (inExec) word = word.replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./$-]+$/.test(word) ? word : `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A setting that takes the rest of its line as one value (a path, a user): quotes would be kept literally. */
function systemdLineValue(value: string): string {
  assertOneLine(value);
  return value.replace(/%/g, '%%');
}

function systemdEnvironment(name: string, value: string): string {
  return `Environment=${systemdWord(`${name}=${value}`, false)}`;
}

export interface SystemdUnitOptions extends ServiceSpec {
  scope: ServiceScope;
  /** The account a system unit runs as; user units run as their owner. */
  user?: string;
}

export function systemdUnit(options: SystemdUnitOptions): string {
  const exec = [options.nodePath, ...options.nodeArgs, options.binPath, 'start']
    .map((word) => systemdWord(word, true))
    .join(' ');
  const env = [
    systemdEnvironment('NANOCLAW_HOME', options.homeDir),
    systemdEnvironment('NANOCLAW_CONFIG_DIR', options.configDir),
    ...Object.entries(options.env).map(([name, value]) => systemdEnvironment(name, value)),
  ];
  const system = options.scope === 'system';
  const lines = [
    '# Written by `nanoclaw service install`; `nanoclaw service uninstall` removes it.',
    '[Unit]',
    'Description=NanoClaw personal assistant',
    ...(system ? ['After=network-online.target', 'Wants=network-online.target'] : []),
    '',
    '[Service]',
    'Type=simple',
    ...(system && options.user !== undefined ? [`User=${systemdLineValue(options.user)}`] : []),
    `ExecStart=${exec}`,
    `WorkingDirectory=${systemdLineValue(options.homeDir)}`,
    ...env,
    'Restart=on-failure',
    `RestartSec=${RESTART_DELAY_SEC}`,
    // The host stops its own runs (SIGTERM to it alone); systemd kills what is left after the timeout.
    'KillMode=mixed',
    `TimeoutStopSec=${options.stopTimeoutSec}`,
    'StandardOutput=journal',
    'StandardError=journal',
    `SyslogIdentifier=${SERVICE_NAME}`,
    // Hardening stops where bubblewrap would break. NoNewPrivileges would disable a
    // setuid bwrap; PrivateUsers, RestrictNamespaces and the user-namespace limits
    // stop bwrap from creating its namespaces or mapping the sandbox's uid 1000;
    // ProtectProc, ProcSubset and ProtectKernelTunables over-mount /proc, after which
    // the kernel refuses the fresh /proc each sandbox mounts; ProtectControlGroups
    // blocks the per-run memory and pid limits; a strict UMask would strip the
    // o+x the sandbox user needs on group folders. In a user unit any sandboxing
    // option implies PrivateUsers, so a user unit gets none.
    ...(system ? ['ProtectSystem=full', 'PrivateTmp=true'] : []),
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}

function xmlText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function launchdPlist(spec: ServiceSpec): string {
  const logFile = path.join(spec.homeDir, 'logs', LOG_FILE_NAME);
  const string = (value: string): string => `<string>${xmlText(value)}</string>`;
  const env = {
    NANOCLAW_HOME: spec.homeDir,
    NANOCLAW_CONFIG_DIR: spec.configDir,
    ...spec.env,
  };
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by `nanoclaw service install`; `nanoclaw service uninstall` removes it. -->',
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key>${string(LAUNCHD_LABEL)}`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...[spec.nodePath, ...spec.nodeArgs, spec.binPath, 'start'].map((arg) => `    ${string(arg)}`),
    '  </array>',
    `  <key>WorkingDirectory</key>${string(spec.homeDir)}`,
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    ...Object.entries(env).map(([name, value]) => `    <key>${xmlText(name)}</key>${string(value)}`),
    '  </dict>',
    '  <key>RunAtLoad</key><true/>',
    // Restart after a crash, not after a clean stop.
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key><false/>',
    '  </dict>',
    `  <key>ThrottleInterval</key><integer>${RESTART_DELAY_SEC}</integer>`,
    `  <key>ExitTimeOut</key><integer>${spec.stopTimeoutSec}</integer>`,
    `  <key>StandardOutPath</key>${string(logFile)}`,
    `  <key>StandardErrorPath</key>${string(logFile)}`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}
