// The host side of the agent's nanoclaw tools (SPEC §7). The caller's identity
// is the run's group, fixed when the host started the run — never anything in
// the arguments. Every call is schema-checked (strict: unknown fields are an
// error, so a forged identity cannot ride along), authorized by the pure table
// in core/authz, and every refusal writes one audit record.

import fs from 'node:fs';
import path from 'node:path';
import * as z from '../core/schema.js';
import type { AuditReason } from '../core/audit.js';
import { authorizeTool, canSeeAllTasks } from '../core/authz.js';
import type { Logger } from '../core/logger.js';
import { TOOL_NAMES, type ToolName } from '../core/protocol.js';
import { chatListings } from '../core/chats.js';
import type { AdditionalMount, Group, Task } from '../core/types.js';
import {
  MAX_ALLOWED_SENDERS,
  validateAllowedSenders,
  validateFolder,
  validateJid,
  validateTrigger,
} from '../core/validate.js';
import { checkAdditionalMounts, type MountAllowlist } from '../sandbox/mount-policy.js';
import { validateSchedule } from '../scheduler/schedule.js';
import { applyTaskStep, newTaskId, taskLimitProblem } from '../scheduler/task-state.js';
import type { StoreApi } from '../store/api.js';
import { spoolOutboundFile } from './outbound-files.js';
import type { Outbox } from './outbox.js';

export interface ToolContext {
  runId: string;
  group: Group;
  /**
   * The mount policy this run's sandbox is judged by, so register_group judges
   * requested mounts the same way. Absent (a host without sandboxes), no
   * additional mount can be allowed.
   */
  mountPolicy?: ToolMountPolicy;
}

export interface ToolMountPolicy {
  /** Reads mount-allowlist.json from the policy dir; null when there is none. Throws on a broken file. */
  loadAllowlist: () => MountAllowlist | null;
  /** The host user's home, for `~` in host paths. */
  homeDir: string;
}

export type ToolAnswer = { ok: true; result: unknown } | { ok: false; error: string };

export interface ToolHostOptions {
  store: StoreApi;
  outbox: Outbox;
  logger: Logger;
  now: () => number;
  timeZone: string;
  minTaskIntervalMs: number;
  /** Tasks (active or paused) one group may have; schedule_task past it is refused. */
  maxActiveTasksPerGroup: number;
  groupsDir: string;
  /** How long send_message waits for the channel to confirm before answering. */
  sendTimeoutMs: number;
  /** The scheduler re-arms its timer. */
  onTasksChanged: () => void;
  /** Main's read-only view of the egress allowlist file. */
  readEgressAllowlist: () => unknown;
  /** Refreshes chat names from channels before list_groups (best effort). */
  syncChatNames?: () => Promise<void>;
  /** send_file: largest file sent, and the host-only directory files are copied to before sending. */
  files?: { maxBytes: number; spoolDir: string };
}

/** More mounts than this is a mistake, not a setup. */
const MAX_MOUNTS = 16;
/** A string of `minChars` to `maxChars` characters. */
const text = (minChars: number, maxChars: number) =>
  z.string().check(z.minLength(minChars), z.maxLength(maxChars));
const taskId = text(1, 64);
const scheduleType = z.enum(['cron', 'interval', 'once']);
const contextMode = z.enum(['group', 'isolated']);

const schemas = {
  send_message: z.strictObject({
    text: text(1, 100_000),
    chat_jid: z.optional(text(0, 256)),
  }),
  schedule_task: z.strictObject({
    prompt: text(1, 20_000),
    schedule_type: scheduleType,
    schedule_value: text(1, 200),
    context_mode: z.optional(contextMode),
    target_group_folder: z.optional(text(0, 64)),
  }),
  list_tasks: z.strictObject({}),
  get_task: z.strictObject({ task_id: taskId }),
  update_task: z.strictObject({
    task_id: taskId,
    prompt: z.optional(text(1, 20_000)),
    schedule_type: z.optional(scheduleType),
    schedule_value: z.optional(text(1, 200)),
    context_mode: z.optional(contextMode),
  }),
  pause_task: z.strictObject({ task_id: taskId }),
  resume_task: z.strictObject({ task_id: taskId }),
  cancel_task: z.strictObject({ task_id: taskId }),
  list_groups: z.strictObject({}),
  register_group: z.strictObject({
    jid: text(0, 256),
    name: text(1, 200),
    folder: text(0, 64),
    trigger: text(0, 64),
    requires_trigger: z.optional(z.boolean()),
    allowed_senders: z.optional(
      z.array(text(0, 128)).check(z.minLength(1), z.maxLength(MAX_ALLOWED_SENDERS)),
    ),
    mounts: z.optional(
      z
        .array(
          z.strictObject({
            hostPath: text(1, 4096),
            containerPath: z.optional(text(1, 255)),
            readonly: z.optional(z.boolean()),
          }),
        )
        .check(z.maxLength(MAX_MOUNTS)),
    ),
  }),
  unregister_group: z.strictObject({ jid: text(0, 256) }),
  read_egress_allowlist: z.strictObject({}),
  send_file: z.strictObject({
    path: text(1, 4096),
    caption: z.optional(text(0, 4000)),
    chat_jid: z.optional(text(0, 256)),
  }),
} satisfies Record<ToolName, z.ZodMiniType>;

type Args<T extends ToolName> = z.infer<(typeof schemas)[T]>;

class Refusal extends Error {
  constructor(
    readonly reason: AuditReason,
    message: string,
    readonly target: string,
  ) {
    super(message);
  }
}

/** What an unknown tool's name is audited as: the name only when it looks like one. */
function toolNameTarget(name: string): string {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(name) ? name : '(invalid tool name)';
}

/** Names the argument in a validation message, as schema errors do. */
function prefixed(field: string, problem: string | null): string | null {
  return problem === null ? null : `${field}: ${problem}`;
}

/** A plain error answer that is not a policy refusal (not found, invalid value). */
class ToolError extends Error {}

export class ToolHost {
  private readonly options: ToolHostOptions;

  constructor(options: ToolHostOptions) {
    this.options = options;
  }

  async handle(ctx: ToolContext, name: string, rawArgs: unknown): Promise<ToolAnswer> {
    try {
      if (!(TOOL_NAMES as readonly string[]).includes(name)) {
        throw new Refusal('unknown_tool', `unknown tool "${name.slice(0, 128)}"`, toolNameTarget(name));
      }
      const tool = name as ToolName;
      const parsed = schemas[tool].safeParse(rawArgs ?? {});
      if (!parsed.success) {
        const detail = parsed.error.issues
          .map((issue) => `${issue.path.join('.') || 'arguments'}: ${issue.message}`)
          .join('; ');
        throw new Refusal('invalid_args', `invalid arguments for ${tool}: ${detail}`, tool);
      }
      return { ok: true, result: await this.dispatch(ctx, tool, parsed.data) };
    } catch (err) {
      if (err instanceof Refusal) {
        this.options.store.audit({
          group: ctx.group.folder,
          runId: ctx.runId,
          action: 'tool_call',
          target: err.target,
          reason: err.reason,
        });
        this.options.logger.warn(
          { group: ctx.group.folder, runId: ctx.runId, reason: err.reason, target: err.target },
          'tool call refused',
        );
        return { ok: false, error: err.message };
      }
      if (err instanceof ToolError) return { ok: false, error: err.message };
      this.options.logger.error({ tool: name, err: String(err) }, 'tool call failed');
      return { ok: false, error: `internal error in ${name}` };
    }
  }

  private dispatch(ctx: ToolContext, tool: ToolName, args: unknown): Promise<unknown> | unknown {
    switch (tool) {
      case 'send_message':
        return this.sendMessage(ctx, args as Args<'send_message'>);
      case 'schedule_task':
        return this.scheduleTask(ctx, args as Args<'schedule_task'>);
      case 'list_tasks':
        return this.listTasks(ctx);
      case 'get_task':
        return this.ownTask(ctx, tool, (args as Args<'get_task'>).task_id);
      case 'update_task':
        return this.updateTask(ctx, args as Args<'update_task'>);
      case 'pause_task':
        return this.setTaskStatus(ctx, tool, (args as Args<'pause_task'>).task_id, 'paused');
      case 'resume_task':
        return this.setTaskStatus(ctx, tool, (args as Args<'resume_task'>).task_id, 'active');
      case 'cancel_task':
        return this.cancelTask(ctx, (args as Args<'cancel_task'>).task_id);
      case 'list_groups':
        return this.listGroups(ctx);
      case 'register_group':
        return this.registerGroup(ctx, args as Args<'register_group'>);
      case 'unregister_group':
        return this.unregisterGroup(ctx, args as Args<'unregister_group'>);
      case 'read_egress_allowlist':
        this.authorize(ctx, { tool });
        return this.options.readEgressAllowlist();
      case 'send_file':
        return this.sendFile(ctx, args as Args<'send_file'>);
    }
  }

  private authorize(
    ctx: ToolContext,
    request: Parameters<typeof authorizeTool>[1],
    target: string = request.tool,
  ): void {
    const decision = authorizeTool(
      { folder: ctx.group.folder, isMain: ctx.group.isMain, chatJid: ctx.group.jid },
      request,
    );
    if (!decision.allowed) throw new Refusal(decision.reason, decision.message, target);
  }

  private async sendMessage(ctx: ToolContext, args: Args<'send_message'>): Promise<unknown> {
    const chatJid = args.chat_jid ?? ctx.group.jid;
    this.authorize(ctx, { tool: 'send_message', targetChatJid: chatJid }, `send_message:${chatJid}`);
    const ids = this.options.outbox.enqueue(chatJid, args.text);
    if (ids.length === 0) return { sent: false, reason: 'nothing to send after removing internal text' };
    const delivery = await this.options.outbox.waitForDelivery(ids, this.options.sendTimeoutMs);
    if (!delivery.ok) throw new ToolError(`message to ${chatJid} was not delivered: ${delivery.error}`);
    return { sent: true, chunks: ids.length };
  }

  private async sendFile(ctx: ToolContext, args: Args<'send_file'>): Promise<unknown> {
    const chatJid = args.chat_jid ?? ctx.group.jid;
    this.authorize(ctx, { tool: 'send_file', targetChatJid: chatJid }, `send_file:${chatJid}`);
    const files = this.options.files;
    if (!files) throw new ToolError('send_file is not available on this host');
    const groupDir = path.join(this.options.groupsDir, ctx.group.folder);
    const spooled = await spoolOutboundFile(
      args.path,
      groupDir,
      files.spoolDir,
      files.maxBytes,
      this.options.now(),
    );
    if (!spooled.ok) {
      if (spooled.reason === 'missing') throw new ToolError(spooled.message);
      throw new Refusal(spooled.reason, spooled.message, 'send_file');
    }
    const id = this.options.outbox.enqueueFile(chatJid, spooled.file, args.caption ?? '');
    const delivery = await this.options.outbox.waitForDelivery([id], this.options.sendTimeoutMs);
    if (!delivery.ok) throw new ToolError(`file to ${chatJid} was not delivered: ${delivery.error}`);
    return { sent: true, type: spooled.file.type };
  }

  private scheduleTask(ctx: ToolContext, args: Args<'schedule_task'>): Task {
    const folder = args.target_group_folder ?? ctx.group.folder;
    this.authorize(ctx, { tool: 'schedule_task', targetGroupFolder: folder }, `schedule_task:${folder}`);
    const target = this.options.store.getGroupByFolder(folder);
    if (!target) throw new ToolError(`target_group_folder: no registered group has folder "${folder}"`);
    const limit = taskLimitProblem(this.options.store, target.folder, this.options.maxActiveTasksPerGroup);
    if (limit) throw new Refusal('task_limit', limit, `schedule_task:${target.folder}`);
    const nextRunAt = this.checkSchedule(args.schedule_type, args.schedule_value);
    const task = this.options.store.createTask({
      id: newTaskId(),
      groupFolder: target.folder,
      chatJid: target.jid,
      prompt: args.prompt,
      scheduleType: args.schedule_type,
      scheduleValue: args.schedule_value,
      contextMode: args.context_mode ?? 'group',
      nextRunAt,
    });
    this.options.onTasksChanged();
    return task;
  }

  private checkSchedule(type: Task['scheduleType'], value: string): number {
    const result = validateSchedule({
      type,
      value,
      timeZone: this.options.timeZone,
      minIntervalMs: this.options.minTaskIntervalMs,
      nowMs: this.options.now(),
    });
    if (!result.ok) throw new ToolError(result.message);
    return result.nextRunAt;
  }

  private listTasks(ctx: ToolContext): Task[] {
    const caller = { folder: ctx.group.folder, isMain: ctx.group.isMain, chatJid: ctx.group.jid };
    return this.options.store.listTasks(canSeeAllTasks(caller) ? undefined : ctx.group.folder);
  }

  /** Looks a task up and authorizes access to it (a foreign task is a refusal, audited). */
  private ownTask(ctx: ToolContext, tool: ToolName, id: string): Task {
    const task = this.options.store.getTask(id);
    if (!task) {
      throw new ToolError(`task_id: no task "${id}"`);
    }
    this.authorize(ctx, { tool, taskOwnerFolder: task.groupFolder }, `${tool}:${id}`);
    return task;
  }

  private updateTask(ctx: ToolContext, args: Args<'update_task'>): Task | undefined {
    const task = this.ownTask(ctx, 'update_task', args.task_id);
    const type = args.schedule_type ?? task.scheduleType;
    const value = args.schedule_value ?? task.scheduleValue;
    const scheduleChanged = args.schedule_type !== undefined || args.schedule_value !== undefined;
    const nextRunAt = scheduleChanged ? this.checkSchedule(type, value) : task.nextRunAt;
    const updated = this.options.store.updateTask(task.id, {
      prompt: args.prompt ?? task.prompt,
      scheduleType: type,
      scheduleValue: value,
      contextMode: args.context_mode ?? task.contextMode,
      nextRunAt: task.status === 'active' ? nextRunAt : task.nextRunAt,
    });
    this.options.onTasksChanged();
    return updated;
  }

  private setTaskStatus(
    ctx: ToolContext,
    tool: ToolName,
    id: string,
    status: 'paused' | 'active',
  ): Task | undefined {
    this.ownTask(ctx, tool, id);
    const result = applyTaskStep(this.options.store, id, status === 'paused' ? 'pause' : 'resume', {
      nowMs: this.options.now(),
      timeZone: this.options.timeZone,
      scheduleHint: 'schedule_task',
    });
    if (!result.ok) throw new ToolError(result.message);
    if (result.changed) this.options.onTasksChanged();
    return result.task;
  }

  private cancelTask(ctx: ToolContext, id: string): { cancelled: string } {
    this.ownTask(ctx, 'cancel_task', id);
    this.options.store.deleteTask(id);
    this.options.onTasksChanged();
    return { cancelled: id };
  }

  private async listGroups(ctx: ToolContext): Promise<unknown> {
    this.authorize(ctx, { tool: 'list_groups' });
    await this.options.syncChatNames?.().catch(() => undefined);
    const { store } = this.options;
    return chatListings(store.listChats(), store.listGroups());
  }

  private registerGroup(ctx: ToolContext, args: Args<'register_group'>): Group {
    this.authorize(ctx, { tool: 'register_group' }, `register_group:${args.jid}`);
    const problem =
      validateJid(args.jid) ??
      validateFolder(args.folder) ??
      validateTrigger(args.trigger) ??
      (args.allowed_senders
        ? prefixed('allowed_senders', validateAllowedSenders(args.allowed_senders))
        : null);
    if (problem) throw new ToolError(problem);
    const mounts = args.mounts ?? [];
    const group: Group = {
      jid: args.jid,
      name: args.name,
      folder: args.folder,
      trigger: args.trigger,
      requiresTrigger: args.requires_trigger ?? true,
      isMain: false,
      containerConfig: mounts.length > 0 ? { additionalMounts: mounts } : {},
      dailyTokenBudget: null,
      allowedSenders: args.allowed_senders ?? null,
      addedAt: new Date(this.options.now()).toISOString(),
    };
    this.checkMounts(ctx, group, mounts);
    try {
      this.options.store.addGroup(group);
    } catch (err) {
      throw new ToolError(err instanceof Error ? err.message : String(err));
    }
    fs.mkdirSync(path.join(this.options.groupsDir, group.folder), { recursive: true });
    return group;
  }

  /**
   * The sandbox's own policy check, run now so the agent learns at once (the
   * policy audits a refusal as action `mount`); every run checks again anyway.
   */
  private checkMounts(ctx: ToolContext, group: Group, mounts: readonly AdditionalMount[]): void {
    if (mounts.length === 0) return;
    let allowlist: MountAllowlist | null = null;
    try {
      allowlist = ctx.mountPolicy?.loadAllowlist() ?? null;
    } catch (err) {
      throw new ToolError(
        `mounts: the owner's mount allowlist cannot be used (${err instanceof Error ? err.message : String(err)}); ask the owner to fix it`,
      );
    }
    const checked = checkAdditionalMounts({
      group,
      requested: mounts,
      allowlist,
      homeDir: ctx.mountPolicy?.homeDir ?? '/nonexistent',
      audit: this.options.store,
      runId: ctx.runId,
    });
    if (!checked.ok) {
      // Already audited by the policy; a ToolError keeps it to one record.
      throw new ToolError(checked.message.replace(/additionalMounts\[/g, 'mounts['));
    }
  }

  private unregisterGroup(ctx: ToolContext, args: Args<'unregister_group'>): { unregistered: string } {
    this.authorize(ctx, { tool: 'unregister_group' }, `unregister_group:${args.jid}`);
    const group = this.options.store.getGroupByJid(args.jid);
    if (!group) throw new ToolError(`jid: no registered group "${args.jid}"`);
    if (group.isMain) throw new ToolError('the main group cannot be unregistered from a tool');
    this.options.store.removeGroup(args.jid);
    return { unregistered: args.jid };
  }
}
