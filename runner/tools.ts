// The nanoclaw tools the agent sees, as an in-process MCP server. Each call is
// forwarded to the host as a `tool_call` line; the host validates, authorizes
// (by the run's real group, SPEC §7) and acts. The runner never decides.

import type { createSdkMcpServer, tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import { TOOL_NAMES, type ToolName } from '../src/core/protocol-frame.js';
import { outcomeText, type ToolOutcome } from './protocol-io.js';
import { TOOL_SCHEMAS } from './tool-schemas.js';

export const MCP_SERVER_NAME = 'nanoclaw';

export type CallTool = (name: ToolName, args: unknown) => Promise<ToolOutcome>;

const scheduleType = z
  .enum(['cron', 'interval', 'once'])
  .describe('cron: 5-field expression; interval: milliseconds; once: ISO timestamp');
const contextMode = z
  .enum(['group', 'isolated'])
  .describe("group: the task sees this chat's conversation; isolated: a fresh session each run");
const taskId = { task_id: z.string().describe('The task id, as returned by schedule_task or list_tasks') };

/** Input shapes (descriptions shared with lite), keyed by tool name; `satisfies` keeps it in step with TOOL_NAMES. */
export const TOOL_SPECS = {
  send_message: {
    description: TOOL_SCHEMAS.send_message.description,
    shape: {
      text: z.string().describe('The message text'),
      chat_jid: z.string().optional().describe('Target chat id; only the main group may send elsewhere'),
    },
  },
  schedule_task: {
    description: TOOL_SCHEMAS.schedule_task.description,
    shape: {
      prompt: z.string().describe('What the agent should do when the task runs'),
      schedule_type: scheduleType,
      schedule_value: z.string().describe('The cron expression, interval in ms, or ISO timestamp'),
      context_mode: contextMode.optional(),
      target_group_folder: z
        .string()
        .optional()
        .describe("Another group's folder; only the main group may schedule for other groups"),
    },
  },
  list_tasks: { description: TOOL_SCHEMAS.list_tasks.description, shape: {} },
  get_task: { description: TOOL_SCHEMAS.get_task.description, shape: taskId },
  update_task: {
    description: TOOL_SCHEMAS.update_task.description,
    shape: {
      ...taskId,
      prompt: z.string().optional(),
      schedule_type: scheduleType.optional(),
      schedule_value: z.string().optional(),
      context_mode: contextMode.optional(),
    },
  },
  pause_task: { description: TOOL_SCHEMAS.pause_task.description, shape: taskId },
  resume_task: { description: TOOL_SCHEMAS.resume_task.description, shape: taskId },
  cancel_task: { description: TOOL_SCHEMAS.cancel_task.description, shape: taskId },
  list_groups: {
    description: TOOL_SCHEMAS.list_groups.description,
    shape: {},
  },
  register_group: {
    description: TOOL_SCHEMAS.register_group.description,
    shape: {
      jid: z.string().describe('The chat id, e.g. from list_groups'),
      name: z.string().describe('Display name'),
      folder: z.string().describe('Folder name: lowercase letters, digits and dashes, e.g. "family-chat"'),
      trigger: z.string().describe('Wake word, e.g. "@Andy"'),
      requires_trigger: z
        .boolean()
        .optional()
        .describe('When false the assistant answers every message (default true)'),
      allowed_senders: z
        .array(z.string())
        .optional()
        .describe(
          'Only these senders may wake the assistant there, e.g. ["491701234567@s.whatsapp.net"]; ' +
            "others' messages are kept as context. Omit to let everyone (default)",
        ),
      mounts: z
        .array(
          z.object({
            hostPath: z
              .string()
              .describe('A host directory, absolute or starting with ~/, e.g. "~/projects/webapp"'),
            containerPath: z
              .string()
              .optional()
              .describe('Name under /workspace/extra/ in that group, e.g. "webapp" (default: the basename)'),
            readonly: z.boolean().optional().describe('Default true; false needs a read-write allowed root'),
          }),
        )
        .optional()
        .describe(
          "Host directories the group's agent may see; checked at once against the owner's mount allowlist " +
            '(a refusal says why). Omit for none',
        ),
    },
  },
  unregister_group: {
    description: TOOL_SCHEMAS.unregister_group.description,
    shape: { jid: z.string().describe('The chat id') },
  },
  read_egress_allowlist: {
    description: TOOL_SCHEMAS.read_egress_allowlist.description,
    shape: {},
  },
  send_file: {
    description: TOOL_SCHEMAS.send_file.description,
    shape: {
      path: z
        .string()
        .describe(
          'The file, relative to your working directory or absolute under /workspace/group, e.g. "report.pdf"',
        ),
      caption: z.string().optional().describe('Text shown with the file'),
      chat_jid: z.string().optional().describe('Target chat id; only the main group may send elsewhere'),
    },
  },
} satisfies Record<ToolName, { description: string; shape: z.ZodRawShape }>;

// CallToolResult allows extra keys; a type alias (unlike an interface) is assignable to it.
type TextResult = {
  content: Array<{ type: 'text'; text: string }>;
  isError?: boolean;
};

/** Turns a host answer into an MCP tool result: JSON text, or an error result with the host's text. */
export function toToolResult(outcome: ToolOutcome): TextResult {
  const { text, isError } = outcomeText(outcome);
  return isError ? { content: [{ type: 'text', text }], isError } : { content: [{ type: 'text', text }] };
}

/** The two SDK functions this needs; passed in because the SDK is loaded lazily. */
export interface McpSdk {
  tool: typeof tool;
  createSdkMcpServer: typeof createSdkMcpServer;
}

export function createNanoclawServer(
  { tool, createSdkMcpServer }: McpSdk,
  callTool: CallTool,
): ReturnType<typeof createSdkMcpServer> {
  const tools = TOOL_NAMES.map((name) => {
    const spec: { description: string; shape: z.ZodRawShape } = TOOL_SPECS[name];
    return tool(name, spec.description, spec.shape, async (args) => toToolResult(await callTool(name, args)));
  });
  return createSdkMcpServer({ name: MCP_SERVER_NAME, version: '1.0.0', tools, alwaysLoad: true });
}
