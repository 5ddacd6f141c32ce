// The sandbox's seccomp filter (SPEC §10.9), assembled here as classic BPF so no
// native dependency is needed: bwrap loads the bytes with `--seccomp FD` right
// before it execs the runner (its own mount/unshare set-up happens earlier and is
// unaffected), and the docker backend gets the same list as a JSON profile.
//
// It is a deny list on top of bwrap's isolation, not an allow list: Node, Claude
// Code and whatever the agent runs keep working, while the calls that reach
// shared kernel state or other processes fail with EPERM (not a kill, so programs
// that probe for them degrade cleanly). A foreign architecture or the x32 ABI on
// x86_64 kills the process: their syscall numbers would bypass the table.

export type SeccompArch = 'x64' | 'arm64';

/** Syscalls denied with EPERM inside every sandbox, and why. */
export const DENIED_SYSCALLS = {
  // Another process's memory and execution: an agent ptrace-stopped bwrap's pid 1.
  ptrace: 'ptrace',
  process_vm_readv: 'ptrace',
  process_vm_writev: 'ptrace',
  // The kernel keyring is shared with the host's session, not namespaced.
  keyctl: 'keyring',
  add_key: 'keyring',
  request_key: 'keyring',
  // Large kernel attack surfaces no agent needs.
  perf_event_open: 'kernel',
  bpf: 'kernel',
  userfaultfd: 'kernel',
  io_uring_setup: 'kernel',
  io_uring_enter: 'kernel',
  io_uring_register: 'kernel',
  open_by_handle_at: 'kernel',
  init_module: 'kernel',
  finit_module: 'kernel',
  delete_module: 'kernel',
  kexec_load: 'kernel',
  kexec_file_load: 'kernel',
  reboot: 'kernel',
  swapon: 'kernel',
  swapoff: 'kernel',
  acct: 'kernel',
  // The file system view and the namespaces are fixed once bwrap has built them.
  mount: 'mount',
  umount2: 'mount',
  pivot_root: 'mount',
  open_tree: 'mount',
  move_mount: 'mount',
  fsopen: 'mount',
  fsconfig: 'mount',
  fsmount: 'mount',
  fspick: 'mount',
  mount_setattr: 'mount',
  unshare: 'namespace',
  setns: 'namespace',
} as const;

export type DeniedSyscall = keyof typeof DENIED_SYSCALLS;

/** Syscall numbers per architecture (asm/unistd_64.h; arm64 uses the generic asm-generic/unistd.h). */
export const SYSCALL_NUMBERS: Record<SeccompArch, Record<DeniedSyscall, number>> = {
  x64: {
    ptrace: 101,
    process_vm_readv: 310,
    process_vm_writev: 311,
    keyctl: 250,
    add_key: 248,
    request_key: 249,
    perf_event_open: 298,
    bpf: 321,
    userfaultfd: 323,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    open_by_handle_at: 304,
    init_module: 175,
    finit_module: 313,
    delete_module: 176,
    kexec_load: 246,
    kexec_file_load: 320,
    reboot: 169,
    swapon: 167,
    swapoff: 168,
    acct: 163,
    mount: 165,
    umount2: 166,
    pivot_root: 155,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    mount_setattr: 442,
    unshare: 272,
    setns: 308,
  },
  arm64: {
    ptrace: 117,
    process_vm_readv: 270,
    process_vm_writev: 271,
    keyctl: 219,
    add_key: 217,
    request_key: 218,
    perf_event_open: 241,
    bpf: 280,
    userfaultfd: 282,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
    open_by_handle_at: 265,
    init_module: 105,
    finit_module: 273,
    delete_module: 106,
    kexec_load: 104,
    kexec_file_load: 294,
    reboot: 142,
    swapon: 224,
    swapoff: 225,
    acct: 89,
    mount: 40,
    umount2: 39,
    pivot_root: 41,
    open_tree: 428,
    move_mount: 429,
    fsopen: 430,
    fsconfig: 431,
    fsmount: 432,
    fspick: 433,
    mount_setattr: 442,
    unshare: 97,
    setns: 268,
  },
};

/** linux/audit.h: the `arch` field of struct seccomp_data. */
export const AUDIT_ARCH: Record<SeccompArch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
/** x86_64 syscall numbers with this bit set are the x32 ABI. */
export const X32_SYSCALL_BIT = 0x40000000;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const EPERM = 1;

// Classic BPF opcodes (linux/filter.h) and struct seccomp_data offsets.
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_RET_K = 0x06;
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;

export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** The seccomp architecture for a Node `process.arch`, or null where we keep no table. */
export function seccompArchOf(nodeArch: string): SeccompArch | null {
  return nodeArch === 'x64' || nodeArch === 'arm64' ? nodeArch : null;
}

/** The filter as instructions: arch check, x32 check (x64), one EPERM per denied call, allow. */
export function seccompProgram(arch: SeccompArch): SockFilter[] {
  const ins = (code: number, k: number, jt = 0, jf = 0): SockFilter => ({ code, jt, jf, k });
  const prog: SockFilter[] = [
    ins(BPF_LD_W_ABS, OFFSET_ARCH),
    ins(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0),
    ins(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
    ins(BPF_LD_W_ABS, OFFSET_NR),
  ];
  if (arch === 'x64') {
    prog.push(ins(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1), ins(BPF_RET_K, SECCOMP_RET_KILL_PROCESS));
  }
  for (const nr of new Set(Object.values(SYSCALL_NUMBERS[arch]))) {
    prog.push(ins(BPF_JMP_JEQ_K, nr, 0, 1), ins(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM));
  }
  prog.push(ins(BPF_RET_K, SECCOMP_RET_ALLOW));
  return prog;
}

/** struct sock_filter[] in host byte order, as bwrap's `--seccomp FD` expects. */
export function compileSeccomp(arch: SeccompArch): Buffer {
  const prog = seccompProgram(arch);
  const buf = Buffer.alloc(prog.length * 8);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  prog.forEach((p, i) => {
    const o = i * 8;
    if (le) {
      buf.writeUInt16LE(p.code, o);
      buf.writeUInt32LE(p.k >>> 0, o + 4);
    } else {
      buf.writeUInt16BE(p.code, o);
      buf.writeUInt32BE(p.k >>> 0, o + 4);
    }
    buf.writeUInt8(p.jt, o + 2);
    buf.writeUInt8(p.jf, o + 3);
  });
  return buf;
}

/** The same deny list as a Docker/Podman seccomp profile (`--security-opt seccomp=FILE`). */
export function dockerSeccompProfile(): string {
  return JSON.stringify(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      archMap: [
        { architecture: 'SCMP_ARCH_X86_64', subArchitectures: [] },
        { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: [] },
      ],
      syscalls: [{ names: Object.keys(DENIED_SYSCALLS), action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }],
    },
    null,
    2,
  );
}
