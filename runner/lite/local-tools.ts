// The lite engine's own tools, run inside the sandbox: bash (with a timeout, an
// output cap and background jobs), read, write, edit, glob and grep. The sandbox
// is the boundary, so paths are not confined here; relative paths start at the
// group folder. Every failure is a tool error the model can read and act on.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { DocumentBlock, ImageBlock, TextBlock, ToolDefinition } from './messages-api.js';

export interface ToolResult {
  content: string | Array<TextBlock | ImageBlock | DocumentBlock>;
  isError?: boolean;
}

export interface BackgroundJob {
  id: string;
  command: string;
  child: ChildProcess;
  output: string;
  /** Bytes dropped from the front of `output` to keep it under the cap. */
  droppedChars: number;
  /** Offset into the job's whole output up to which bash_output already showed it. */
  shownUpTo: number;
  exitCode: number | null | undefined;
}

export interface LocalToolContext {
  cwd: string;
  env: Record<string, string>;
  /** Background jobs of this run; killed when the run ends. */
  jobs: Map<string, BackgroundJob>;
  limits: LocalToolLimits;
}

export interface LocalToolLimits {
  defaultBashTimeoutMs: number;
  maxBashTimeoutMs: number;
  /** Characters of tool output the model sees; the middle of longer output is cut. */
  maxOutputChars: number;
  maxReadLines: number;
  maxImageBytes: number;
  maxResults: number;
}

export const DEFAULT_LIMITS: LocalToolLimits = {
  defaultBashTimeoutMs: 120_000,
  maxBashTimeoutMs: 600_000,
  maxOutputChars: 30_000,
  maxReadLines: 2000,
  maxImageBytes: 5 * 1024 * 1024,
  maxResults: 500,
};

const IMAGE_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
};
const SKIP_DIRS = new Set(['.git', 'node_modules']);

export const LOCAL_TOOL_DEFINITIONS: ToolDefinition[] = [
  {
    name: 'bash',
    description:
      'Run a bash command in the group folder. Output (stdout and stderr) is cut in the middle past a cap. ' +
      'Set run_in_background for long-running commands, then use bash_output and bash_kill.',
    input_schema: {
      type: 'object',
      properties: {
        command: { type: 'string' },
        timeout_ms: { type: 'number', description: 'Default 120000, at most 600000' },
        run_in_background: { type: 'boolean' },
      },
      required: ['command'],
    },
  },
  {
    name: 'bash_output',
    description: 'New output and status of a background bash job.',
    input_schema: { type: 'object', properties: { job_id: { type: 'string' } }, required: ['job_id'] },
  },
  {
    name: 'bash_kill',
    description: 'Stop a background bash job.',
    input_schema: { type: 'object', properties: { job_id: { type: 'string' } }, required: ['job_id'] },
  },
  {
    name: 'read',
    description:
      'Read a file with line numbers; offset (1-based line) and limit select a range. ' +
      'Images (png, jpg, gif, webp) and PDFs are shown to you as they are.',
    input_schema: {
      type: 'object',
      properties: { path: { type: 'string' }, offset: { type: 'number' }, limit: { type: 'number' } },
      required: ['path'],
    },
  },
  {
    name: 'write',
    description: 'Write a file (creating parent folders), replacing any content it had.',
    input_schema: {
      type: 'object',
      properties: { path: { type: 'string' }, content: { type: 'string' } },
      required: ['path', 'content'],
    },
  },
  {
    name: 'edit',
    description:
      'Replace an exact string in a file. old_string must occur exactly once unless replace_all is true.',
    input_schema: {
      type: 'object',
      properties: {
        path: { type: 'string' },
        old_string: { type: 'string' },
        new_string: { type: 'string' },
        replace_all: { type: 'boolean' },
      },
      required: ['path', 'old_string', 'new_string'],
    },
  },
  {
    name: 'glob',
    description:
      'Find files by a glob pattern such as "**/*.md" (relative to path, default the group folder).',
    input_schema: {
      type: 'object',
      properties: { pattern: { type: 'string' }, path: { type: 'string' } },
      required: ['pattern'],
    },
  },
  {
    name: 'grep',
    description:
      'Search file contents with a regular expression; prints path:line:text. glob filters file names.',
    input_schema: {
      type: 'object',
      properties: {
        pattern: { type: 'string' },
        path: { type: 'string' },
        glob: { type: 'string' },
        ignore_case: { type: 'boolean' },
      },
      required: ['pattern'],
    },
  },
];

export const LOCAL_TOOL_NAMES: ReadonlySet<string> = new Set(LOCAL_TOOL_DEFINITIONS.map((t) => t.name));

type Input = Record<string, unknown>;

class ToolInputError extends Error {}

function str(input: Input, key: string): string {
  const value = input[key];
  if (typeof value !== 'string') throw new ToolInputError(`"${key}" must be a string`);
  return value;
}

function optNum(input: Input, key: string): number | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new ToolInputError(`"${key}" must be a number`);
  return value;
}

/** Keeps the head and tail of long output: errors tend to be at the end, context at the start. */
export function capOutput(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const half = Math.floor(maxChars / 2);
  const cut = text.length - 2 * half;
  return `${text.slice(0, half)}\n… [${cut} characters cut] …\n${text.slice(text.length - half)}`;
}

export async function runLocalTool(
  ctx: LocalToolContext,
  name: string,
  rawInput: unknown,
): Promise<ToolResult> {
  const input = (typeof rawInput === 'object' && rawInput !== null ? rawInput : {}) as Input;
  try {
    switch (name) {
      case 'bash':
        return await bash(ctx, input);
      case 'bash_output':
        return bashOutput(ctx, input);
      case 'bash_kill':
        return bashKill(ctx, input);
      case 'read':
        return read(ctx, input);
      case 'write':
        return write(ctx, input);
      case 'edit':
        return edit(ctx, input);
      case 'glob':
        return glob(ctx, input);
      case 'grep':
        return grep(ctx, input);
      default:
        return { content: `unknown tool "${name}"`, isError: true };
    }
  } catch (err) {
    if (err instanceof ToolInputError) return { content: `${name}: ${err.message}`, isError: true };
    const code = (err as NodeJS.ErrnoException).code;
    const message = err instanceof Error ? err.message : String(err);
    return {
      content: code ? `${name} failed (${code}): ${message}` : `${name} failed: ${message}`,
      isError: true,
    };
  }
}

function resolvePath(ctx: LocalToolContext, p: string): string {
  return path.resolve(ctx.cwd, p);
}

function startShell(ctx: LocalToolContext, command: string): ChildProcess {
  // Its own process group, so a timeout kills the command's children too.
  return spawn('bash', ['-c', command], {
    cwd: ctx.cwd,
    env: ctx.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

async function bash(ctx: LocalToolContext, input: Input): Promise<ToolResult> {
  const command = str(input, 'command');
  if (input.run_in_background === true) return startJob(ctx, command);
  const requested = optNum(input, 'timeout_ms') ?? ctx.limits.defaultBashTimeoutMs;
  const timeoutMs = Math.max(1, Math.min(requested, ctx.limits.maxBashTimeoutMs));
  const child = startShell(ctx, command);
  // Kept to twice the cap while running, so a command printing gigabytes cannot fill memory.
  const keepChars = ctx.limits.maxOutputChars * 2;
  let head = '';
  let tail = '';
  let total = 0;
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    total += text.length;
    if (head.length < keepChars) {
      const room = keepChars - head.length;
      head += text.slice(0, room);
      tail += text.slice(room);
    } else tail += text;
    if (tail.length > keepChars) tail = tail.slice(tail.length - keepChars);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, timeoutMs);
  const exitCode = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code));
  });
  clearTimeout(timer);
  const dropped = total - head.length - tail.length;
  const joined = dropped > 0 ? `${head}\n… [${dropped} characters cut] …\n${tail}` : head + tail;
  let text = capOutput(joined, ctx.limits.maxOutputChars);
  if (timedOut) {
    text += `\n[killed after ${timeoutMs} ms; pass a larger timeout_ms or run_in_background for long commands]`;
    return { content: text, isError: true };
  }
  if (exitCode !== 0) text += `\n[exit code ${exitCode ?? 'unknown'}]`;
  return { content: text === '' ? '(no output)' : text, isError: exitCode !== 0 };
}

function startJob(ctx: LocalToolContext, command: string): ToolResult {
  const id = `job-${ctx.jobs.size + 1}`;
  const child = startShell(ctx, command);
  const job: BackgroundJob = {
    id,
    command,
    child,
    output: '',
    droppedChars: 0,
    shownUpTo: 0,
    exitCode: undefined,
  };
  const collect = (chunk: Buffer): void => {
    job.output += chunk.toString('utf8');
    const over = job.output.length - ctx.limits.maxOutputChars * 2;
    if (over > 0) {
      job.output = job.output.slice(over);
      job.droppedChars += over;
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  child.on('close', (code) => (job.exitCode = code));
  child.on('error', () => (job.exitCode = null));
  ctx.jobs.set(id, job);
  return { content: `started ${id}; use bash_output with job_id "${id}" to see its output` };
}

function findJob(ctx: LocalToolContext, input: Input): BackgroundJob {
  const id = str(input, 'job_id');
  const job = ctx.jobs.get(id);
  if (!job) {
    const known = [...ctx.jobs.keys()].join(', ') || 'none';
    throw new ToolInputError(`no background job "${id}" (jobs: ${known})`);
  }
  return job;
}

function bashOutput(ctx: LocalToolContext, input: Input): ToolResult {
  const job = findJob(ctx, input);
  const from = Math.max(0, job.shownUpTo - job.droppedChars);
  const fresh = job.output.slice(from);
  job.shownUpTo = job.droppedChars + job.output.length;
  const status =
    job.exitCode === undefined
      ? 'running'
      : job.exitCode === null
        ? 'killed'
        : `exited with code ${job.exitCode}`;
  return { content: `[${job.id} ${status}]\n${capOutput(fresh, ctx.limits.maxOutputChars)}` };
}

function bashKill(ctx: LocalToolContext, input: Input): ToolResult {
  const job = findJob(ctx, input);
  if (job.exitCode !== undefined) return { content: `${job.id} had already ended` };
  killGroup(job.child);
  return { content: `${job.id} killed` };
}

/** Kills every background job still running; called when the run ends. */
export function killJobs(ctx: LocalToolContext): void {
  for (const job of ctx.jobs.values()) if (job.exitCode === undefined) killGroup(job.child);
}

function looksBinary(buffer: Buffer): boolean {
  return buffer.subarray(0, 8192).includes(0);
}

function read(ctx: LocalToolContext, input: Input): ToolResult {
  const file = resolvePath(ctx, str(input, 'path'));
  const stat = fs.statSync(file);
  if (stat.isDirectory()) return { content: `${file} is a directory; use glob or bash ls`, isError: true };
  const ext = path.extname(file).toLowerCase();
  const imageType = IMAGE_TYPES[ext];
  if (imageType || ext === '.pdf') {
    if (stat.size > ctx.limits.maxImageBytes) {
      return {
        content: `${file} is ${stat.size} bytes; at most ${ctx.limits.maxImageBytes} can be shown (shrink it with bash first)`,
        isError: true,
      };
    }
    const data = fs.readFileSync(file).toString('base64');
    if (imageType)
      return { content: [{ type: 'image', source: { type: 'base64', media_type: imageType, data } }] };
    return {
      content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data } }],
    };
  }
  const buffer = fs.readFileSync(file);
  if (looksBinary(buffer)) {
    return {
      content: `${file} is a binary file (${stat.size} bytes); inspect it with bash, e.g. file or xxd | head`,
      isError: true,
    };
  }
  const lines = buffer.toString('utf8').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const offset = Math.max(1, Math.floor(optNum(input, 'offset') ?? 1));
  const limit = Math.max(
    1,
    Math.min(Math.floor(optNum(input, 'limit') ?? ctx.limits.maxReadLines), ctx.limits.maxReadLines),
  );
  if (lines.length === 0) return { content: `${file} is empty` };
  if (offset > lines.length) {
    return { content: `${file} has ${lines.length} lines; offset ${offset} is past its end`, isError: true };
  }
  const shown = lines.slice(offset - 1, offset - 1 + limit);
  let text = shown.map((line, i) => `${String(offset + i).padStart(6)}\t${line}`).join('\n');
  const last = offset - 1 + shown.length;
  if (last < lines.length)
    text += `\n[lines ${offset}-${last} of ${lines.length}; pass offset ${last + 1} for more]`;
  return { content: capOutput(text, ctx.limits.maxOutputChars) };
}

function write(ctx: LocalToolContext, input: Input): ToolResult {
  const file = resolvePath(ctx, str(input, 'path'));
  const content = str(input, 'content');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return { content: `wrote ${Buffer.byteLength(content)} bytes to ${file}` };
}

function countOccurrences(text: string, needle: string): number {
  let count = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}

function edit(ctx: LocalToolContext, input: Input): ToolResult {
  const file = resolvePath(ctx, str(input, 'path'));
  const oldString = str(input, 'old_string');
  const newString = str(input, 'new_string');
  if (oldString === '')
    return { content: 'edit: old_string is empty; use write to create a file', isError: true };
  if (oldString === newString)
    return { content: 'edit: old_string and new_string are the same', isError: true };
  const text = fs.readFileSync(file, 'utf8');
  const count = countOccurrences(text, oldString);
  if (count === 0) {
    return {
      content: `edit: old_string not found in ${file}; read the file and copy the text exactly`,
      isError: true,
    };
  }
  if (count > 1 && input.replace_all !== true) {
    return {
      content: `edit: old_string occurs ${count} times in ${file}; add surrounding text to make it unique, or set replace_all`,
      isError: true,
    };
  }
  fs.writeFileSync(file, text.split(oldString).join(newString));
  return { content: `replaced ${count} occurrence${count === 1 ? '' : 's'} in ${file}` };
}

/** A glob as a regular expression over `/`-separated relative paths: `**`, `*`, `?`, `{a,b}`. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        const slash = pattern[i + 2] === '/';
        re += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const close = pattern.indexOf('}', i);
      if (close === -1) re += '\\{';
      else {
        re += `(?:${pattern
          .slice(i + 1, close)
          .split(',')
          .map((p) => p.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
          .join('|')})`;
        i = close;
      }
    } else re += c.replace(/[.+^$()|[\]\\}]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function* walkFiles(root: string): Generator<string> {
  const stack = [''];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      continue;
    }
    // A folder's files in name order, then its subfolders in name order.
    const sorted = entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    const dirs: string[] = [];
    for (const entry of sorted) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) dirs.push(child);
      } else if (entry.isFile()) yield child;
    }
    stack.push(...dirs.reverse());
  }
}

function glob(ctx: LocalToolContext, input: Input): ToolResult {
  const root = resolvePath(ctx, typeof input.path === 'string' ? input.path : '.');
  const re = globToRegExp(str(input, 'pattern'));
  const found: string[] = [];
  for (const rel of walkFiles(root)) {
    if (!re.test(rel)) continue;
    found.push(rel);
    if (found.length >= ctx.limits.maxResults) break;
  }
  if (found.length === 0) return { content: `no files under ${root} match` };
  const more = found.length >= ctx.limits.maxResults ? `\n[stopped at ${ctx.limits.maxResults} files]` : '';
  return { content: found.sort().join('\n') + more };
}

function hasRipgrep(env: Record<string, string>): boolean {
  return spawnSync('rg', ['--version'], { env, stdio: 'ignore' }).status === 0;
}

function grep(ctx: LocalToolContext, input: Input): ToolResult {
  const pattern = str(input, 'pattern');
  const target = resolvePath(ctx, typeof input.path === 'string' ? input.path : '.');
  const fileGlob = typeof input.glob === 'string' ? input.glob : undefined;
  const ignoreCase = input.ignore_case === true;
  if (hasRipgrep(ctx.env)) {
    const args = ['--line-number', '--no-heading', '--color', 'never', '--max-count', '100'];
    if (ignoreCase) args.push('--ignore-case');
    if (fileGlob) args.push('--glob', fileGlob);
    args.push('--regexp', pattern, target);
    const result = spawnSync('rg', args, { cwd: ctx.cwd, env: ctx.env, maxBuffer: 16 * 1024 * 1024 });
    if (result.status === 1) return { content: 'no matches' };
    if (result.status !== 0) return { content: `grep: ${result.stderr.toString().trim()}`, isError: true };
    return { content: capOutput(result.stdout.toString('utf8').trimEnd(), ctx.limits.maxOutputChars) };
  }
  return grepInJs(ctx, target, pattern, fileGlob, ignoreCase);
}

/** The fallback where ripgrep is not installed: a plain walk, skipping binary files. */
export function grepInJs(
  ctx: LocalToolContext,
  target: string,
  pattern: string,
  fileGlob: string | undefined,
  ignoreCase: boolean,
): ToolResult {
  let re: RegExp;
  try {
    re = new RegExp(pattern, ignoreCase ? 'i' : '');
  } catch (err) {
    return { content: `grep: invalid pattern: ${(err as Error).message}`, isError: true };
  }
  const globRe = fileGlob ? globToRegExp(fileGlob.includes('/') ? fileGlob : `**/${fileGlob}`) : undefined;
  const isFile = fs.statSync(target).isFile();
  const files = isFile ? [''] : [...walkFiles(target)];
  const lines: string[] = [];
  for (const rel of files) {
    if (globRe && !isFile && !globRe.test(rel)) continue;
    const file = isFile ? target : path.join(target, rel);
    let buffer: Buffer;
    try {
      buffer = fs.readFileSync(file);
    } catch {
      continue;
    }
    if (looksBinary(buffer)) continue;
    buffer
      .toString('utf8')
      .split('\n')
      .forEach((line, i) => {
        if (lines.length < ctx.limits.maxResults && re.test(line)) lines.push(`${file}:${i + 1}:${line}`);
      });
    if (lines.length >= ctx.limits.maxResults) break;
  }
  if (lines.length === 0) return { content: 'no matches' };
  return { content: capOutput(lines.join('\n'), ctx.limits.maxOutputChars) };
}
