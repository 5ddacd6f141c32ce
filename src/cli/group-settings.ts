// The per-group settings the owner sets with `groups add` and `groups edit`:
// additional mounts (`--mount host:container[:rw]`), the wake word and the run
// timeout and the agent engine. Mounts are judged at once by the same mount policy the sandbox
// applies before every run, so a refused mount is refused here, with its reason,
// and nothing is saved.

import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { AuditSink } from '../core/audit.js';
import type { AdditionalMount, Group } from '../core/types.js';
import {
  checkAdditionalMounts,
  loadMountAllowlist,
  MOUNT_ALLOWLIST_FILE,
  MountAllowlistError,
} from '../sandbox/mount-policy.js';
import { CliError } from './context.js';
import { usageError } from './commands/args.js';

const MOUNT_EXAMPLE = '--mount ~/projects/webapp:webapp (add :rw for read-write)';
const TIMEOUT_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** Below this a run cannot even start the agent; above it a hung run holds its group for a day. */
const MIN_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 24 * 3_600_000;

/** Engines an owner may pick per group; `echo` is a test stand-in, set only globally. */
export const GROUP_ENGINES = ['lite', 'claude-code'] as const;
export type GroupEngine = (typeof GROUP_ENGINES)[number];

/** `lite` or `claude-code`; `default` (edit only) clears the choice, returned as null. */
export function parseEngineFlag(command: string, value: string, allowDefault: boolean): GroupEngine | null {
  if (allowDefault && value === 'default') return null;
  if ((GROUP_ENGINES as readonly string[]).includes(value)) return value as GroupEngine;
  const choices = [...GROUP_ENGINES, ...(allowDefault ? ['default'] : [])].join(', ');
  throw usageError(command, `--engine "${value}" must be one of ${choices}, e.g. --engine lite`);
}

/** `openai`, or null for Anthropic (`anthropic` or `default`, which is Anthropic): no choice kept. */
export function parseProviderFlag(command: string, value: string): 'openai' | null {
  if (value === 'default' || value === 'anthropic') return null;
  if (value === 'openai') return value;
  throw usageError(
    command,
    `--provider "${value}" must be one of openai, anthropic, default, e.g. --provider openai`,
  );
}

/** The group's engine for tables: its own choice, or `default` for the configured one. */
export function describeEngine(engine: string | undefined): string {
  return engine ?? 'default';
}

/** `host[:container][:rw|:ro]`; read-only unless `:rw`. The container name defaults to the host basename. */
export function parseMountFlag(command: string, value: string): AdditionalMount {
  const parts = value.split(':');
  let readonly = true;
  const last = parts[parts.length - 1];
  if (parts.length > 1 && (last === 'rw' || last === 'ro')) {
    readonly = last === 'ro';
    parts.pop();
  }
  const [hostPath, containerPath, ...extra] = parts;
  if (!hostPath || extra.length > 0 || containerPath === '') {
    throw usageError(command, `--mount "${value}" must be host:container[:rw], e.g. ${MOUNT_EXAMPLE}`);
  }
  return containerPath === undefined ? { hostPath, readonly } : { hostPath, containerPath, readonly };
}

/** `10m`, `600s`, `90000ms`, `1h`: the group's run timeout in milliseconds. */
export function parseTimeoutFlag(command: string, value: string): number {
  const match = /^(\d{1,9})(ms|s|m|h)$/.exec(value.trim());
  if (!match) {
    throw usageError(
      command,
      `--timeout "${value}" must be a duration with a unit (ms, s, m, h), e.g. --timeout 10m`,
    );
  }
  const timeoutMs = Number(match[1]) * TIMEOUT_UNIT_MS[match[2] as keyof typeof TIMEOUT_UNIT_MS];
  if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) {
    throw usageError(command, `--timeout "${value}" must be between 10s and 24h, e.g. --timeout 10m`);
  }
  return timeoutMs;
}

/** `host:name:ro` per mount, comma-separated, for tables; `-` when there are none. */
export function describeMounts(mounts: readonly AdditionalMount[] | undefined): string {
  if (!mounts || mounts.length === 0) return '-';
  return mounts
    .map(
      (m) =>
        `${m.hostPath}:${m.containerPath ?? path.basename(m.hostPath)}:${m.readonly === false ? 'rw' : 'ro'}`,
    )
    .join(',');
}

export function describeTimeout(timeoutMs: number | undefined): string {
  if (timeoutMs === undefined) return 'default';
  if (timeoutMs % 3_600_000 === 0) return `${timeoutMs / 3_600_000}h`;
  if (timeoutMs % 60_000 === 0) return `${timeoutMs / 60_000}m`;
  if (timeoutMs % 1000 === 0) return `${timeoutMs / 1000}s`;
  return `${timeoutMs}ms`;
}

/**
 * Judges `mounts` for `group` against the allowlist in the policy dir, exactly as
 * a run would. Throws a one-line CliError naming the refused mount, the reason
 * and what to do (the refusal is audited like a run's). Returns notes for the
 * owner, e.g. that a read-write mount will be read-only in a non-main group.
 */
export function checkGroupMounts(
  command: string,
  config: Config,
  audit: AuditSink,
  group: Group,
  mounts: readonly AdditionalMount[],
  typed: readonly string[],
): string[] {
  if (mounts.length === 0) return [];
  let allowlist;
  try {
    allowlist = loadMountAllowlist(config.configDir);
  } catch (err) {
    if (err instanceof MountAllowlistError) throw new CliError(`nanoclaw ${command}: ${err.message}`);
    throw err;
  }
  const checked = checkAdditionalMounts({
    group,
    requested: mounts,
    allowlist,
    // The same home the host gives the sandbox's check (run-host: os.homedir()), for `~`.
    homeDir: os.homedir(),
    audit,
    runId: null,
  });
  if (!checked.ok) {
    throw new CliError(`nanoclaw ${command}: ${cliWording(checked.message, typed, config)}`);
  }
  return checked.mounts.flatMap((spec, i) =>
    mounts[i].readonly === false && spec.readonly
      ? [
          `note: --mount ${typed[i]} will be read-only: the allowlist's nonMainReadOnly makes every mount of a non-main group read-only`,
        ]
      : [],
  );
}

/** The policy speaks of JSON fields (an agent's view); the owner typed --mount flags. */
function cliWording(message: string, typed: readonly string[], config: Config): string {
  const flag = (index: string) => `--mount ${typed[Number(index)] ?? ''}`;
  const text = message
    .replace(/^Mount refused for group "[^"]*": /, '')
    .replace(
      /additionalMounts\[(\d+)\]\.readonly is false but the allowed root of "[^"]*" is read-only; set "readonly": true/,
      (_m, i: string) => `${flag(i)} asks for :rw but its allowed root is read-only; drop :rw`,
    )
    .replace(/additionalMounts\[(\d+)\]\.hostPath "[^"]*"/g, (_m, i: string) => flag(i))
    .replace(
      /additionalMounts\[(\d+)\]\.containerPath "[^"]*"/g,
      (_m, i: string) => `${flag(i)}: the container name`,
    )
    .replace(/(,|;) (e\.g\. )?\{"hostPath".*\}$/, `; e.g. ${MOUNT_EXAMPLE}`)
    .replace(`~/.config/nanoclaw/${MOUNT_ALLOWLIST_FILE}`, path.join(config.configDir, MOUNT_ALLOWLIST_FILE));
  return `mount refused: ${text}`;
}
