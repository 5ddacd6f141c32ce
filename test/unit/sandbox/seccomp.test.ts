// Runs the compiled seccomp filter through a small classic-BPF interpreter, for
// both architectures we keep tables for (the e2e suite proves the host's arch in
// a real sandbox; this covers arm64 too).

import { describe, expect, it } from 'vitest';

import {
  AUDIT_ARCH,
  DENIED_SYSCALLS,
  EPERM,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SYSCALL_NUMBERS,
  X32_SYSCALL_BIT,
  compileSeccomp,
  dockerSeccompProfile,
  seccompArchOf,
  type SeccompArch,
} from '../../../src/sandbox/seccomp.js';

/** Evaluates a struct sock_filter[] (little-endian bytes) against {arch, nr}. */
function evaluate(bytes: Buffer, data: { arch: number; nr: number }): number {
  const count = bytes.length / 8;
  let acc = 0;
  for (let pc = 0; pc < count;) {
    const o = pc * 8;
    const code = bytes.readUInt16LE(o);
    const jt = bytes.readUInt8(o + 2);
    const jf = bytes.readUInt8(o + 3);
    const k = bytes.readUInt32LE(o + 4);
    switch (code) {
      case 0x20: // ld [k]
        if (k === 0) acc = data.nr >>> 0;
        else if (k === 4) acc = data.arch >>> 0;
        else throw new Error(`unexpected load offset ${k}`);
        pc++;
        break;
      case 0x15: // jeq #k
        pc += 1 + (acc === k ? jt : jf);
        break;
      case 0x35: // jge #k
        pc += 1 + (acc >= k ? jt : jf);
        break;
      case 0x06: // ret #k
        return k;
      default:
        throw new Error(`unexpected opcode ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('filter fell off its end');
}

// A few calls every program makes, per arch: read, write, openat, clone, execve, exit_group, mmap.
const EVERYDAY: Record<SeccompArch, number[]> = {
  x64: [0, 1, 257, 56, 59, 231, 9],
  arm64: [63, 64, 56, 220, 221, 94, 222],
};

describe('seccomp filter', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    describe(arch, () => {
      const filter = compileSeccomp(arch);

      it('denies every listed syscall with EPERM', () => {
        for (const [name, nr] of Object.entries(SYSCALL_NUMBERS[arch])) {
          expect({ name, ret: evaluate(filter, { arch: AUDIT_ARCH[arch], nr }) }).toEqual({
            name,
            ret: SECCOMP_RET_ERRNO | EPERM,
          });
        }
      });

      it('allows everyday syscalls', () => {
        for (const nr of EVERYDAY[arch]) {
          expect(evaluate(filter, { arch: AUDIT_ARCH[arch], nr })).toBe(SECCOMP_RET_ALLOW);
        }
      });

      it('kills a process calling with another architecture', () => {
        const other = arch === 'x64' ? AUDIT_ARCH.arm64 : AUDIT_ARCH.x64;
        expect(evaluate(filter, { arch: other, nr: 0 })).toBe(SECCOMP_RET_KILL_PROCESS);
        // i386 (int 0x80 on x86_64) and 32-bit arm (compat on arm64).
        expect(evaluate(filter, { arch: 0x40000003, nr: 26 })).toBe(SECCOMP_RET_KILL_PROCESS);
        expect(evaluate(filter, { arch: 0x40000028, nr: 26 })).toBe(SECCOMP_RET_KILL_PROCESS);
      });
    });
  }

  it('kills x32-ABI calls on x86_64, whose numbers would bypass the table', () => {
    const filter = compileSeccomp('x64');
    const x32Ptrace = X32_SYSCALL_BIT + 521;
    expect(evaluate(filter, { arch: AUDIT_ARCH.x64, nr: x32Ptrace })).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(evaluate(filter, { arch: AUDIT_ARCH.x64, nr: X32_SYSCALL_BIT + 1 })).toBe(
      SECCOMP_RET_KILL_PROCESS,
    );
  });

  it('covers the whole deny list in both tables', () => {
    for (const arch of ['x64', 'arm64'] as const) {
      expect(Object.keys(SYSCALL_NUMBERS[arch]).sort()).toEqual(Object.keys(DENIED_SYSCALLS).sort());
    }
    for (const name of ['ptrace', 'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'mount']) {
      expect(Object.keys(DENIED_SYSCALLS)).toContain(name);
    }
  });

  it('picks the table by Node arch and has none for others', () => {
    expect(seccompArchOf('x64')).toBe('x64');
    expect(seccompArchOf('arm64')).toBe('arm64');
    expect(seccompArchOf('ia32')).toBeNull();
  });

  it('gives docker the same list as an EPERM profile', () => {
    const profile = JSON.parse(dockerSeccompProfile()) as {
      defaultAction: string;
      syscalls: { names: string[]; action: string; errnoRet: number }[];
    };
    expect(profile.defaultAction).toBe('SCMP_ACT_ALLOW');
    expect(profile.syscalls).toEqual([
      { names: Object.keys(DENIED_SYSCALLS), action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
    ]);
  });
});
