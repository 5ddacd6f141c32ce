// Turns a failed bwrap start into one cause and one fix: bwrap not installed,
// user namespaces switched off (and the sysctl that switches them on), a path
// the sandbox user cannot reach, or else bwrap's own first line. Pure over the
// stderr text and the sysctl values so every branch is unit-tested; the reads
// of /proc live in `readUsernsSysctls`.

import fs from 'node:fs';

export type StartFailureCause = 'bwrap_missing' | 'userns_disabled' | 'path_blocked' | 'other';

export interface StartFailure {
  cause: StartFailureCause;
  /** One or two sentences: what is wrong and the exact fix. */
  message: string;
  /** For path_blocked: the path bwrap could not reach, to locate the blocking directory. */
  path?: string;
}

/** The kernel switches that can forbid unprivileged user namespaces; null where the file is absent. */
export interface UsernsSysctls {
  /** Debian/Ubuntu kernels: kernel.unprivileged_userns_clone (0 = off). */
  unprivilegedUsernsClone: number | null;
  /** user.max_user_namespaces (0 = off). */
  maxUserNamespaces: number | null;
  /** Ubuntu 23.10+: kernel.apparmor_restrict_unprivileged_userns (1 = restricted). */
  apparmorRestrictUnprivilegedUserns: number | null;
}

const SYSCTL_FILES: Record<keyof UsernsSysctls, string> = {
  unprivilegedUsernsClone: '/proc/sys/kernel/unprivileged_userns_clone',
  maxUserNamespaces: '/proc/sys/user/max_user_namespaces',
  apparmorRestrictUnprivilegedUserns: '/proc/sys/kernel/apparmor_restrict_unprivileged_userns',
};

export function readUsernsSysctls(
  read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8'),
): UsernsSysctls {
  const value = (file: string): number | null => {
    try {
      const n = Number(read(file).trim());
      return Number.isFinite(n) ? n : null;
    } catch {
      return null;
    }
  };
  return {
    unprivilegedUsernsClone: value(SYSCTL_FILES.unprivilegedUsernsClone),
    maxUserNamespaces: value(SYSCTL_FILES.maxUserNamespaces),
    apparmorRestrictUnprivilegedUserns: value(SYSCTL_FILES.apparmorRestrictUnprivilegedUserns),
  };
}

export function bwrapMissing(bwrapPath: string): StartFailure {
  return {
    cause: 'bwrap_missing',
    message: `bubblewrap is not installed (no ${bwrapPath}). Fix: install it, e.g. \`apt-get install bubblewrap\` (Debian/Ubuntu) or \`dnf install bubblewrap\` (Fedora)`,
  };
}

/** The sysctl that forbids user namespaces on this host, with the command that allows them; null if none does. */
export function usernsSwitchedOff(sysctls: UsernsSysctls): string | null {
  const persist = ' (add the same setting to /etc/sysctl.d/99-nanoclaw.conf to keep it after a reboot)';
  if (sysctls.unprivilegedUsernsClone === 0) {
    return `unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0). Fix: run \`sysctl -w kernel.unprivileged_userns_clone=1\` as root${persist}`;
  }
  if (sysctls.maxUserNamespaces === 0) {
    return `user namespaces are disabled (user.max_user_namespaces = 0). Fix: run \`sysctl -w user.max_user_namespaces=15000\` as root${persist}`;
  }
  if (sysctls.apparmorRestrictUnprivilegedUserns === 1) {
    return `AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1). Fix: run \`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\` as root${persist}, or install an AppArmor profile that allows bwrap to use user namespaces`;
  }
  return null;
}

const NAMESPACE_PATTERNS = [
  /creating new namespace failed/i,
  /no permissions to creat(e|ing) new namespace/i,
  /setting up uid map/i,
  /unshare.*(operation not permitted|no space left)/i,
  /user namespaces? .*(not|disabled)/i,
  /clone.*(operation not permitted|no space left)/i,
];

/** The first meaningful line of bwrap's stderr (bwrap prefixes its own errors with "bwrap: "). */
export function firstLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.find((l) => l.startsWith('bwrap:')) ?? lines[0] ?? '';
}

/**
 * Names the cause of a failed sandbox start from bwrap's stderr and the
 * kernel's user-namespace switches.
 */
export function diagnoseBwrapFailure(input: { stderr: string; sysctls: UsernsSysctls }): StartFailure {
  const line = firstLine(input.stderr);
  const source = /can't find source path (.+?): permission denied/i.exec(line);
  if (source) {
    return {
      cause: 'path_blocked',
      path: source[1],
      message: `the sandbox user cannot reach ${source[1]} (permission denied on a directory on the way). Fix: make every directory on that path searchable by others (chmod o+x); nanoclaw doctor names the directory`,
    };
  }
  const switchedOff = usernsSwitchedOff(input.sysctls);
  if (
    switchedOff &&
    (NAMESPACE_PATTERNS.some((p) => p.test(line)) || /operation not permitted/i.test(line))
  ) {
    return { cause: 'userns_disabled', message: switchedOff };
  }
  if (NAMESPACE_PATTERNS.some((p) => p.test(line))) {
    return {
      cause: 'userns_disabled',
      message: `bwrap cannot create a user namespace (${line}): this host or the container NanoClaw runs in forbids unprivileged user namespaces. Fix: allow them (\`sysctl -w user.max_user_namespaces=15000\`; in Docker, run the container with \`--security-opt seccomp=unconfined --security-opt apparmor=unconfined\`), or use sandbox "docker"`,
    };
  }
  return {
    cause: 'other',
    message: `bwrap failed to start a sandbox: ${line || 'no error output'}. Run \`nanoclaw doctor\` for details`,
  };
}

/** bwrap's own error line in a run's failure text (bwrap exits before the runner says anything). */
export function bwrapErrorLine(text: string): string | null {
  const match = /(?:^|\n|: )(bwrap: [^\n]+)/.exec(text);
  return match ? match[1] : null;
}
