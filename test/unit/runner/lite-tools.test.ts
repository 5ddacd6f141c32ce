// The lite engine's local tools on a real file system with real bash: edit's
// refusals, binary and media reads, bash's timeout, output cap and background
// jobs, glob and the JS grep fallback.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  capOutput,
  globToRegExp,
  grepInJs,
  killJobs,
  runLocalTool,
  type LocalToolContext,
  type ToolResult,
} from '../../../runner/lite/local-tools.js';

let ctx: LocalToolContext;

beforeEach(() => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'lite-tools-'));
  ctx = {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, LANG: 'C.UTF-8' },
    jobs: new Map(),
    limits: { ...DEFAULT_LIMITS, maxOutputChars: 1000 },
  };
});
afterEach(() => {
  killJobs(ctx);
  fs.rmSync(ctx.cwd, { recursive: true, force: true });
});

const run = (name: string, input: unknown): Promise<ToolResult> => runLocalTool(ctx, name, input);
const text = (result: ToolResult): string =>
  typeof result.content === 'string' ? result.content : JSON.stringify(result.content);

describe('edit', () => {
  beforeEach(() => fs.writeFileSync(path.join(ctx.cwd, 'f.txt'), 'alpha beta\nalpha gamma\n'));

  it('refuses a string that is not unique, and says how to fix it', async () => {
    const result = await run('edit', { path: 'f.txt', old_string: 'alpha', new_string: 'omega' });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/occurs 2 times .* add surrounding text .* or set replace_all/);
    expect(fs.readFileSync(path.join(ctx.cwd, 'f.txt'), 'utf8')).toBe('alpha beta\nalpha gamma\n');
  });

  it('refuses a string that is missing', async () => {
    const result = await run('edit', { path: 'f.txt', old_string: 'delta', new_string: 'x' });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/old_string not found/);
  });

  it('replaces a unique string, or every one with replace_all', async () => {
    expect(
      (await run('edit', { path: 'f.txt', old_string: 'alpha b', new_string: 'A b' })).isError,
    ).toBeFalsy();
    const all = await run('edit', { path: 'f.txt', old_string: 'a', new_string: '4', replace_all: true });
    expect(text(all)).toMatch(/replaced 5 occurrences/);
    expect(fs.readFileSync(path.join(ctx.cwd, 'f.txt'), 'utf8')).toBe('A bet4\n4lph4 g4mm4\n');
  });

  it('names a missing file', async () => {
    const result = await run('edit', { path: 'nope.txt', old_string: 'a', new_string: 'b' });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/ENOENT/);
  });
});

describe('read and write', () => {
  it('writes into new folders and reads a line range with numbers', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    expect((await run('write', { path: 'a/b/c.txt', content: lines })).isError).toBeFalsy();
    const result = await run('read', { path: 'a/b/c.txt', offset: 3, limit: 2 });
    expect(text(result)).toBe('     3\tline 3\n     4\tline 4\n[lines 3-4 of 10; pass offset 5 for more]');
    const past = await run('read', { path: 'a/b/c.txt', offset: 11 });
    expect(past.isError).toBe(true);
  });

  it('refuses a binary file with a hint instead of dumping it', async () => {
    fs.writeFileSync(path.join(ctx.cwd, 'blob.bin'), Buffer.from([0x7f, 0x45, 0x00, 0x01, 0x02]));
    const result = await run('read', { path: 'blob.bin' });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/binary file \(5 bytes\); inspect it with bash/);
  });

  it('passes images and PDFs to the model as content blocks', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000', 'hex');
    fs.writeFileSync(path.join(ctx.cwd, 'p.png'), png);
    fs.writeFileSync(path.join(ctx.cwd, 'd.pdf'), '%PDF-1.4\n%\u00ff\n');
    expect((await run('read', { path: 'p.png' })).content).toEqual([
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png.toString('base64') } },
    ]);
    const pdf = (await run('read', { path: 'd.pdf' })).content;
    expect(pdf).toMatchObject([{ type: 'document', source: { media_type: 'application/pdf' } }]);
  });
});

describe('bash', () => {
  it('runs in the group folder and reports a failing exit code', async () => {
    const ok = await run('bash', { command: 'pwd' });
    expect(text(ok).trim()).toBe(fs.realpathSync(ctx.cwd));
    const failed = await run('bash', { command: 'echo oops >&2; exit 3' });
    expect(failed.isError).toBe(true);
    expect(text(failed)).toBe('oops\n\n[exit code 3]');
  });

  it('kills a command (and its children) past its timeout', async () => {
    const marker = path.join(ctx.cwd, 'child-survived');
    const result = await run('bash', {
      command: `(sleep 3; touch ${marker}) & sleep 60`,
      timeout_ms: 1000,
    });
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/killed after 1000 ms/);
    // The background child was in the same process group: it must be gone too.
    const probe = await run('bash', { command: `sleep 3; test -e ${marker} && echo survived || echo gone` });
    expect(text(probe).trim()).toBe('gone');
  });

  it('caps huge output, keeping its head and tail', async () => {
    const result = await run('bash', {
      command: "echo START; head -c 5000000 /dev/zero | tr '\\0' x; echo; echo END",
    });
    const out = text(result);
    expect(out.length).toBeLessThan(1100);
    expect(out.startsWith('START\n')).toBe(true);
    expect(out.trimEnd().endsWith('END')).toBe(true);
    expect(out).toMatch(/characters cut/);
  });

  it('runs background jobs, shows their new output and kills them', async () => {
    const started = await run('bash', {
      command: 'echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; sleep 60',
      run_in_background: true,
    });
    expect(text(started)).toMatch(/^started job-1/);
    const poll = async (until: (out: string) => boolean): Promise<string> => {
      let seen = '';
      for (let i = 0; i < 400 && !until(seen); i++) {
        seen += text(await run('bash_output', { job_id: 'job-1' }));
        await new Promise((r) => setTimeout(r, 50));
      }
      return seen;
    };
    expect(await poll((s) => s.includes('first'))).toMatch(/\[job-1 running\]\nfirst/);
    fs.writeFileSync(path.join(ctx.cwd, 'go'), '');
    const later = await poll((s) => s.includes('second'));
    expect(later).not.toMatch(/first[\s\S]*first/);
    expect(text(await run('bash_kill', { job_id: 'job-1' }))).toBe('job-1 killed');
    expect(await poll((s) => s.includes('killed]'))).toMatch(/\[job-1 killed\]/);
    const unknown = await run('bash_output', { job_id: 'job-9' });
    expect(unknown.isError).toBe(true);
    expect(text(unknown)).toMatch(/no background job "job-9" \(jobs: job-1\)/);
  });
});

describe('glob and grep', () => {
  beforeEach(() => {
    fs.mkdirSync(path.join(ctx.cwd, 'src/deep'), { recursive: true });
    fs.mkdirSync(path.join(ctx.cwd, 'node_modules/x'), { recursive: true });
    fs.writeFileSync(path.join(ctx.cwd, 'src/a.ts'), 'const needle = 1;\n');
    fs.writeFileSync(path.join(ctx.cwd, 'src/deep/b.ts'), 'no\nNEEDLE here\n');
    fs.writeFileSync(path.join(ctx.cwd, 'src/c.md'), 'needle in md\n');
    fs.writeFileSync(path.join(ctx.cwd, 'node_modules/x/d.ts'), 'needle\n');
    fs.writeFileSync(path.join(ctx.cwd, 'bin.dat'), Buffer.from('needle\0'));
  });

  it('translates globs', () => {
    expect(globToRegExp('**/*.ts').test('src/deep/b.ts')).toBe(true);
    expect(globToRegExp('**/*.ts').test('top.ts')).toBe(true);
    expect(globToRegExp('src/*.ts').test('src/deep/b.ts')).toBe(false);
    expect(globToRegExp('src/*.{ts,md}').test('src/c.md')).toBe(true);
  });

  it('glob lists matching files, skipping node_modules', async () => {
    expect(text(await run('glob', { pattern: '**/*.ts' }))).toBe('src/a.ts\nsrc/deep/b.ts');
  });

  it('the JS grep fallback finds lines, honours case and file filters, skips binaries', () => {
    const plain = text(grepInJs(ctx, ctx.cwd, 'needle', undefined, false));
    expect(plain.split('\n').map((l) => path.relative(ctx.cwd, l))).toEqual([
      'src/a.ts:1:const needle = 1;',
      'src/c.md:1:needle in md',
    ]);
    const filtered = text(grepInJs(ctx, ctx.cwd, 'needle', '*.ts', true));
    expect(filtered).toContain('src/deep/b.ts:2:NEEDLE here');
    expect(filtered).not.toContain('c.md');
    expect(grepInJs(ctx, ctx.cwd, '(', undefined, false).isError).toBe(true);
  });
});

it('capOutput keeps both ends', () => {
  expect(capOutput('a'.repeat(10) + 'b'.repeat(10), 10)).toBe('aaaaa\n… [10 characters cut] …\nbbbbb');
});
