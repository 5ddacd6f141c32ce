import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  SandboxAccessError,
  checkSandboxAccess,
  chmodCommand,
  describeProblem,
  firstBlocked,
  pathChain,
  repairedMode,
  type PathStat,
} from '../../../src/sandbox/access.js';
import {
  bwrapErrorLine,
  diagnoseBwrapFailure,
  readUsernsSysctls,
  type UsernsSysctls,
} from '../../../src/sandbox/start-failure.js';

const agent = { uid: 1000, gid: 1000 };
const dir = (p: string, mode: number, uid = 0, gid = 0): PathStat => ({
  path: p,
  mode,
  uid,
  gid,
  isDirectory: true,
});
const file = (p: string, mode: number, uid = 0): PathStat => ({
  path: p,
  mode,
  uid,
  gid: 0,
  isDirectory: false,
});

describe('the pure access rules', () => {
  it('lists every directory from the root down', () => {
    expect(pathChain('/root/nc/data')).toEqual(['/', '/root', '/root/nc', '/root/nc/data']);
    expect(pathChain('/')).toEqual(['/']);
  });

  it('finds the first directory the sandbox user cannot pass', () => {
    const chain = [
      dir('/', 0o755),
      dir('/tmp', 0o1777),
      dir('/tmp/tmp.x', 0o700),
      dir('/tmp/tmp.x/home', 0o700),
    ];
    expect(firstBlocked(chain, agent, 'traverse')?.path).toBe('/tmp/tmp.x');
    expect(firstBlocked([dir('/', 0o755), dir('/srv', 0o711)], agent, 'traverse')).toBeNull();
  });

  it('uses the owner bits for the sandbox user and the group bits for its group', () => {
    expect(firstBlocked([dir('/', 0o755), dir('/g', 0o700, 1000)], agent, 'read')).toBeNull();
    expect(firstBlocked([dir('/', 0o755), dir('/g', 0o750, 0, 1000)], agent, 'read')).toBeNull();
    expect(firstBlocked([dir('/', 0o755), dir('/g', 0o705, 0, 1000)], agent, 'read')?.path).toBe('/g');
  });

  it('needs read and search to list the last directory, read for a file', () => {
    const groups = [dir('/', 0o755), dir('/nc', 0o711), dir('/nc/groups', 0o711)];
    expect(firstBlocked(groups, agent, 'traverse')).toBeNull();
    expect(firstBlocked(groups, agent, 'read')?.path).toBe('/nc/groups');
    expect(firstBlocked([dir('/', 0o755), file('/runner.mjs', 0o600)], agent, 'read')?.path).toBe(
      '/runner.mjs',
    );
    // A binary the sandbox only runs needs x, not r.
    expect(firstBlocked([dir('/', 0o755), file('/node', 0o711)], agent, 'traverse')).toBeNull();
    expect(chmodCommand(file('/node', 0o700), 'traverse', true)).toBe('chmod o+x /node');
  });

  it('says the exact chmod, and repairs 0700 to 0711 (pass) or 0755 (read)', () => {
    expect(chmodCommand(dir('/root', 0o700), 'read', false)).toBe('chmod o+x /root');
    expect(chmodCommand(dir('/nc/groups', 0o700), 'read', true)).toBe('chmod o+rx /nc/groups');
    expect(chmodCommand(dir("/a b/it's", 0o700), 'traverse', true)).toBe(`chmod o+x '/a b/it'\\''s'`);
    expect(repairedMode(dir('/nc', 0o40700), 'read', false)).toBe(0o711);
    expect(repairedMode(dir('/nc/groups', 0o700), 'read', true)).toBe(0o755);
  });

  it('describes a problem with the directory, its mode and the fix', () => {
    const text = describeProblem(
      {
        blocked: '/tmp/tmp.x',
        mode: 0o700,
        ownerUid: 0,
        target: { path: '/tmp/tmp.x/home/groups', need: 'read', what: 'the groups directory' },
        command: 'chmod o+x /tmp/tmp.x',
      },
      agent,
    );
    expect(text).toBe(
      'the sandbox user (uid 1000) cannot enter /tmp/tmp.x (on the way to the groups directory, /tmp/tmp.x/home/groups): ' +
        'it is mode 0700 owned by uid 0. Fix: run `chmod o+x /tmp/tmp.x` (or move NANOCLAW_HOME / the install elsewhere)',
    );
  });
});

describe('checkSandboxAccess on real directories', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
  });

  it('runs as root in CI (the sandbox user is another uid)', () => {
    expect(process.getuid?.()).toBe(0);
  });

  it('repairs directories NanoClaw owns and reports the rest with the command', () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-access-')); // 0700, like mktemp -d
    roots.push(parent);
    const home = path.join(parent, 'home');
    fs.mkdirSync(path.join(home, 'groups'), { recursive: true });
    fs.chmodSync(home, 0o700);
    fs.chmodSync(path.join(home, 'groups'), 0o700);
    fs.writeFileSync(path.join(home, '.env'), 'SECRET=1', { mode: 0o600 });
    const repairs: string[] = [];
    const result = checkSandboxAccess({
      targets: [{ path: path.join(home, 'groups'), need: 'read', what: 'the groups directory' }],
      user: agent,
      hostUid: 0,
      ownedRoots: [home],
      onRepair: (r) => repairs.push(r.path),
    });
    expect(result.problems.map((p) => p.command)).toEqual([`chmod o+x ${parent}`]);
    expect(result.problems[0].blocked).toBe(parent);
    // The parent is not NanoClaw's: its mode is untouched.
    expect(fs.statSync(parent).mode & 0o777).toBe(0o700);

    fs.chmodSync(parent, 0o711);
    const again = checkSandboxAccess({
      targets: [{ path: path.join(home, 'groups'), need: 'read', what: 'the groups directory' }],
      user: agent,
      hostUid: 0,
      ownedRoots: [home],
      onRepair: (r) => repairs.push(r.path),
    });
    expect(again.problems).toEqual([]);
    expect(repairs).toEqual([home, path.join(home, 'groups')]);
    expect(fs.statSync(home).mode & 0o777).toBe(0o711);
    expect(fs.statSync(path.join(home, 'groups')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(home, '.env')).mode & 0o777).toBe(0o600);
  });

  it('checks nothing when the sandbox runs as the host user', () => {
    const result = checkSandboxAccess({
      targets: [{ path: '/root', need: 'read', what: 'x' }],
      user: agent,
      hostUid: 1000,
      ownedRoots: [],
    });
    expect(result).toEqual({ repaired: [], problems: [] });
  });

  it('joins several problems into one error message', () => {
    const err = new SandboxAccessError(
      [
        {
          blocked: '/a',
          mode: 0o700,
          ownerUid: 0,
          target: { path: '/a', need: 'traverse', what: 'A' },
          command: 'chmod o+x /a',
        },
        {
          blocked: '/b',
          mode: 0o700,
          ownerUid: 0,
          target: { path: '/b', need: 'read', what: 'B' },
          command: 'chmod o+rx /b',
        },
      ],
      agent,
    );
    expect(err.message).toContain('cannot enter /a (A)');
    expect(err.message).toContain('cannot read /b (B)');
    expect(err.message).toContain('`chmod o+rx /b`');
  });
});

describe('diagnoseBwrapFailure', () => {
  const on: UsernsSysctls = {
    unprivilegedUsernsClone: null,
    maxUserNamespaces: 15000,
    apparmorRestrictUnprivilegedUserns: null,
  };

  it('names a path bwrap could not reach', () => {
    const d = diagnoseBwrapFailure({
      stderr: "bwrap: Can't find source path /tmp/tmp.x/data/sandbox-etc/passwd: Permission denied\n",
      sysctls: on,
    });
    expect(d.cause).toBe('path_blocked');
    expect(d.path).toBe('/tmp/tmp.x/data/sandbox-etc/passwd');
  });

  it('names the sysctl that turned user namespaces off and the command that turns them on', () => {
    const stderr =
      'bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.';
    expect(
      diagnoseBwrapFailure({ stderr, sysctls: { ...on, unprivilegedUsernsClone: 0 } }).message,
    ).toContain('`sysctl -w kernel.unprivileged_userns_clone=1`');
    expect(diagnoseBwrapFailure({ stderr, sysctls: { ...on, maxUserNamespaces: 0 } }).message).toContain(
      '`sysctl -w user.max_user_namespaces=15000`',
    );
    const apparmor = diagnoseBwrapFailure({
      stderr: 'bwrap: setting up uid map: Permission denied',
      sysctls: { ...on, apparmorRestrictUnprivilegedUserns: 1 },
    });
    expect(apparmor.cause).toBe('userns_disabled');
    expect(apparmor.message).toContain('kernel.apparmor_restrict_unprivileged_userns=0');
    const container = diagnoseBwrapFailure({
      stderr: 'bwrap: Creating new namespace failed: Operation not permitted',
      sysctls: on,
    });
    expect(container.cause).toBe('userns_disabled');
    expect(container.message).toContain('seccomp=unconfined');
  });

  it('passes any other failure on as bwrap’s first line', () => {
    const d = diagnoseBwrapFailure({
      stderr: 'warming up\nbwrap: execvp /bin/true: No such file or directory\n',
      sysctls: on,
    });
    expect(d).toEqual({
      cause: 'other',
      message:
        'bwrap failed to start a sandbox: bwrap: execvp /bin/true: No such file or directory. Run `nanoclaw doctor` for details',
    });
  });

  it("finds bwrap's own line in a run's failure text", () => {
    expect(
      bwrapErrorLine(
        'runner exited with code 1 without finishing: bwrap: Creating new namespace failed: Operation not permitted',
      ),
    ).toBe('bwrap: Creating new namespace failed: Operation not permitted');
    expect(bwrapErrorLine('runner exited with code 1 without finishing: TypeError: x')).toBeNull();
  });

  it('reads the sysctls, absent files as null', () => {
    const values: Record<string, string> = { '/proc/sys/user/max_user_namespaces': '0\n' };
    const read = (f: string): string => {
      if (f in values) return values[f];
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    expect(readUsernsSysctls(read)).toEqual({
      unprivilegedUsernsClone: null,
      maxUserNamespaces: 0,
      apparmorRestrictUnprivilegedUserns: null,
    });
  });
});
