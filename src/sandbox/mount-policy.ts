// The mount policy of SPEC §9. A group's additional mounts come from data an agent
// can influence (main registers groups), so every host path is resolved first and
// then judged against an allowlist that lives outside the project and is never
// mounted. One refused mount refuses the whole run, with an audit record.

import fs from 'node:fs';
import path from 'node:path';

import * as z from '../core/schema.js';

import type { AuditReason, AuditSink } from '../core/audit.js';
import type { AdditionalMount, Group } from '../core/types.js';
import { SANDBOX_PATHS } from './mounts.js';
import type { MountSpec } from './types.js';

export const MOUNT_ALLOWLIST_FILE = 'mount-allowlist.json';

/**
 * Never mountable, even under an allowed root (SPEC §9.2). A path is refused when
 * any component contains a pattern (`prod.env`, `backup_id_rsa`, `keys.gpg`); a
 * pattern with a `/` must match consecutive components (`.config/gh`).
 */
export const DEFAULT_BLOCKED_PATTERNS: readonly string[] = [
  '.ssh',
  '.gnupg',
  '.aws',
  '.azure',
  '.gcloud',
  '.kube',
  '.docker',
  '.env',
  '.netrc',
  '.npmrc',
  '.pypirc',
  'credentials',
  'id_rsa',
  'id_ed25519',
  'private_key',
  '.secret',
  '.gpg',
  '.pem',
  '.key',
  '.p12',
  '.kdbx',
  'id_ecdsa',
  '.git-credentials',
  '.config/gh',
];

const allowedRootSchema = z.strictObject({
  path: z.string().check(
    z.minLength(1),
    z.refine((p) => p.startsWith('/') || p === '~' || p.startsWith('~/'), {
      message: 'must be absolute or start with ~/, e.g. "~/projects"',
    }),
  ),
  allowReadWrite: z._default(z.boolean(), false),
  description: z.optional(z.string()),
});

const allowlistSchema = z.strictObject({
  allowedRoots: z.array(allowedRootSchema),
  blockedPatterns: z.optional(z.array(z.string().check(z.minLength(1)))),
  nonMainReadOnly: z._default(z.boolean(), true),
});

export type MountAllowlist = z.infer<typeof allowlistSchema>;

const EXAMPLE_MOUNT = '{"hostPath": "~/projects/webapp", "containerPath": "webapp", "readonly": true}';
const EXAMPLE_ALLOWLIST = '{"allowedRoots": [{"path": "~/projects", "allowReadWrite": false}]}';

/** Thrown for an unreadable or invalid allowlist file; the host must not start on it. */
export class MountAllowlistError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}. A valid file looks like ${EXAMPLE_ALLOWLIST}`);
    this.name = 'MountAllowlistError';
  }
}

/** Reads the allowlist from the policy dir; null when there is no file (no additional mounts). */
export function loadMountAllowlist(configDir: string): MountAllowlist | null {
  const file = path.join(configDir, MOUNT_ALLOWLIST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new MountAllowlistError(file, `cannot be read (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new MountAllowlistError(file, `is not valid JSON${jsonErrorLine(text, err)}`);
  }
  const parsed = allowlistSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new MountAllowlistError(file, `field ${where}: ${issue.message}`);
  }
  return parsed.data;
}

/** Node 20's JSON.parse does not report where it failed; find the first bad offset by bisecting prefixes. */
function jsonErrorLine(text: string, err: unknown): string {
  const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
  const failsBefore = (k: number): boolean => {
    try {
      JSON.parse(text.slice(0, k));
      return false;
    } catch (e) {
      const m = (e as Error).message;
      // Errors at the very end of a prefix only mean "incomplete", not "wrong".
      const at = /at position (\d+)/.exec(m);
      if (at) return Number(at[1]) < k;
      return !/end of JSON input/i.test(m);
    }
  };
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (failsBefore(mid)) hi = mid;
    else lo = mid + 1;
  }
  const line = text.slice(0, Math.max(lo - 1, 0)).split('\n').length;
  return ` at line ${line} (${msg})`;
}

export interface CheckMountsInput {
  group: Group;
  requested: readonly AdditionalMount[];
  /** Null when the allowlist file does not exist. */
  allowlist: MountAllowlist | null;
  /** The host user's home, for `~`. */
  homeDir: string;
  audit: AuditSink;
  runId: string | null;
}

export type CheckMountsResult = { ok: true; mounts: MountSpec[] } | { ok: false; message: string };

interface Refusal {
  reason: AuditReason;
  message: string;
}

function expandHome(p: string, homeDir: string): string {
  if (p === '~') return homeDir;
  if (p.startsWith('~/')) return path.join(homeDir, p.slice(2));
  return p;
}

/**
 * The blocked pattern a path hits: a component containing it (`.env` hits
 * `prod.env` and `.envrc`), or for `a/b` patterns, component `a` followed by one
 * containing `b`. Case-insensitive.
 */
export function findBlockedComponent(p: string, patterns: readonly string[]): string | null {
  const components = p
    .split(/[\\/]+/)
    .filter(Boolean)
    .map((c) => c.toLowerCase());
  for (const pat of patterns) {
    const parts = pat.toLowerCase().split('/').filter(Boolean);
    if (parts.length === 0) continue;
    const last = parts[parts.length - 1];
    const lead = parts.slice(0, -1);
    for (let i = lead.length; i < components.length; i++) {
      if (!components[i].includes(last)) continue;
      if (lead.every((part, j) => components[i - lead.length + j] === part)) return pat;
    }
  }
  return null;
}

/**
 * Re-checks additional mounts right before a sandbox is built: each host path
 * must still resolve to itself (it was stored resolved) and hit no default
 * blocked pattern. Closes the window between the policy check and the bind in
 * which a checked directory is swapped for a symlink to `~/.ssh`.
 */
export function assertMountsUnchanged(mounts: readonly MountSpec[]): void {
  for (const m of mounts) {
    if (!m.sandboxPath.startsWith(SANDBOX_PATHS.extraRoot + '/')) continue;
    let real: string;
    try {
      real = fs.realpathSync(m.hostPath);
    } catch {
      throw new Error(`mount source ${m.hostPath} disappeared after the mount policy checked it`);
    }
    if (real !== path.resolve(m.hostPath)) {
      throw new Error(
        `mount source ${m.hostPath} changed after the mount policy checked it (it now leads to ${real}); run refused`,
      );
    }
    const hit = findBlockedComponent(real, DEFAULT_BLOCKED_PATTERNS);
    if (hit)
      throw new Error(`mount source ${m.hostPath} contains "${hit}", which may hold secrets; run refused`);
  }
}

function isUnder(child: string, root: string): boolean {
  return child === root || child.startsWith(root.endsWith('/') ? root : root + '/');
}

interface ResolvedRoot {
  realPath: string;
  allowReadWrite: boolean;
}

function resolveRoots(allowlist: MountAllowlist, homeDir: string): ResolvedRoot[] {
  const roots: ResolvedRoot[] = [];
  for (const r of allowlist.allowedRoots) {
    try {
      roots.push({
        realPath: fs.realpathSync(expandHome(r.path, homeDir)),
        allowReadWrite: r.allowReadWrite,
      });
    } catch {
      // A root that does not exist allows nothing.
    }
  }
  return roots;
}

function checkOne(
  index: number,
  req: AdditionalMount,
  ctx: {
    group: Group;
    allowlist: MountAllowlist;
    roots: ResolvedRoot[];
    patterns: string[];
    homeDir: string;
  },
  usedTargets: Set<string>,
): Refusal | MountSpec {
  const field = `additionalMounts[${index}]`;
  const hostField = `${field}.hostPath`;
  const example = `e.g. ${EXAMPLE_MOUNT}`;
  if (typeof req.hostPath !== 'string' || req.hostPath.trim() === '') {
    return {
      reason: 'outside_allowed_roots',
      message: `${hostField} is empty; give a host directory, ${example}`,
    };
  }
  const expanded = expandHome(req.hostPath, ctx.homeDir);
  if (!path.isAbsolute(expanded)) {
    return {
      reason: 'outside_allowed_roots',
      message: `${hostField} "${req.hostPath}" must be absolute or start with ~/, ${example}`,
    };
  }
  // Checked before and after resolving: the name as written and where it really leads.
  const lexicalHit = findBlockedComponent(path.normalize(expanded), ctx.patterns);
  if (lexicalHit) {
    return {
      reason: 'blocked_pattern',
      message: `${hostField} "${req.hostPath}" is refused: it contains "${lexicalHit}", which may hold secrets; mount a directory without secrets, ${example}`,
    };
  }
  let real: string;
  try {
    real = fs.realpathSync(expanded);
  } catch {
    return {
      reason: 'path_missing',
      message: `${hostField} "${req.hostPath}" does not exist on the host, ${example}`,
    };
  }
  const realHit = findBlockedComponent(real, ctx.patterns);
  if (realHit) {
    return {
      reason: 'blocked_pattern',
      message: `${hostField} "${req.hostPath}" is refused: it resolves to a path containing "${realHit}", which may hold secrets; ${example}`,
    };
  }
  let root: ResolvedRoot | undefined;
  for (const r of ctx.roots) {
    if (isUnder(real, r.realPath) && (!root || r.realPath.length > root.realPath.length)) root = r;
  }
  if (!root) {
    const listed = ctx.allowlist.allowedRoots.map((r) => r.path).join(', ') || 'none';
    return {
      reason: 'outside_allowed_roots',
      message: `${hostField} "${req.hostPath}" is not under an allowed root (allowed: ${listed}), ${example}`,
    };
  }

  const cpField = `${field}.containerPath`;
  const cp = req.containerPath ?? path.basename(expanded);
  const cpExample = `use a relative name such as "webapp" (it appears at ${SANDBOX_PATHS.extraRoot}/webapp)`;
  if (typeof cp !== 'string' || cp.trim() === '' || cp.includes('\0') || cp.includes('\\')) {
    return {
      reason: 'invalid_container_path',
      message: `${cpField} "${String(cp)}" is invalid; ${cpExample}`,
    };
  }
  if (cp.startsWith('/') || cp.split('/').includes('..')) {
    return {
      reason: 'invalid_container_path',
      message: `${cpField} "${cp}" must be relative and must not contain ".."; ${cpExample}`,
    };
  }
  const target = path.posix.join(SANDBOX_PATHS.extraRoot, cp);
  if (!target.startsWith(SANDBOX_PATHS.extraRoot + '/')) {
    return {
      reason: 'invalid_container_path',
      message: `${cpField} "${cp}" does not name a directory; ${cpExample}`,
    };
  }
  if (usedTargets.has(target)) {
    return { reason: 'invalid_container_path', message: `${cpField} "${cp}" is used twice; ${cpExample}` };
  }
  usedTargets.add(target);

  const wantsWrite = req.readonly === false;
  if (wantsWrite && !root.allowReadWrite) {
    return {
      reason: 'readonly_root',
      message: `${field}.readonly is false but the allowed root of "${req.hostPath}" is read-only; set "readonly": true, ${example}`,
    };
  }
  const forcedReadOnly = !ctx.group.isMain && ctx.allowlist.nonMainReadOnly;
  return { hostPath: real, sandboxPath: target, readonly: !wantsWrite || forcedReadOnly };
}

/** Judges a group's additional mounts; any refusal refuses the run and writes one audit record. */
export function checkAdditionalMounts(input: CheckMountsInput): CheckMountsResult {
  const { group, requested, allowlist, homeDir, audit, runId } = input;
  if (requested.length === 0) return { ok: true, mounts: [] };
  const refuse = (target: string, r: Refusal): CheckMountsResult => {
    audit.audit({ group: group.folder, runId, action: 'mount', target, reason: r.reason });
    return { ok: false, message: `Mount refused for group "${group.folder}": ${r.message}` };
  };
  if (!allowlist) {
    return refuse(requested[0].hostPath, {
      reason: 'no_allowlist',
      message: `additionalMounts[0].hostPath "${requested[0].hostPath}": no mount allowlist exists, so no additional mounts are allowed; create ~/.config/nanoclaw/${MOUNT_ALLOWLIST_FILE}, e.g. ${EXAMPLE_ALLOWLIST}`,
    });
  }
  const ctx = {
    group,
    allowlist,
    roots: resolveRoots(allowlist, homeDir),
    patterns: [...DEFAULT_BLOCKED_PATTERNS, ...(allowlist.blockedPatterns ?? [])],
    homeDir,
  };
  const used = new Set<string>();
  const mounts: MountSpec[] = [];
  for (let i = 0; i < requested.length; i++) {
    const r = checkOne(i, requested[i], ctx, used);
    if ('reason' in r) return refuse(String(requested[i].hostPath), r);
    mounts.push(r);
  }
  return { ok: true, mounts };
}
