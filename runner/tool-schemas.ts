// The nanoclaw tools' descriptions and input schemas as plain JSON Schema data,
// so the lite engine offers them without loading zod. The claude-code engine's
// MCP server declares the same tools with zod shapes (runner/tools.ts, its
// descriptions taken from here); test/unit/runner/host-lines.test.ts checks
// that those shapes render to exactly these schemas.

import type { ToolName } from '../src/core/protocol-frame.js';

export interface ToolSchema {
  description: string;
  input_schema: Record<string, unknown>;
}

// Fields and schemas several tools share (the tools' shapes in runner/tools.ts share them too).
const TASK_ID = { type: 'string', description: 'The task id, as returned by schedule_task or list_tasks' };
const TASK_ID_ONLY = { type: 'object', properties: { task_id: TASK_ID }, required: ['task_id'] };
const SCHEDULE_TYPE = {
  type: 'string',
  enum: ['cron', 'interval', 'once'],
  description: 'cron: 5-field expression; interval: milliseconds; once: ISO timestamp',
};
const CONTEXT_MODE = {
  type: 'string',
  enum: ['group', 'isolated'],
  description: "group: the task sees this chat's conversation; isolated: a fresh session each run",
};
const CHAT_JID = { description: 'Target chat id; only the main group may send elsewhere', type: 'string' };
const NO_INPUT = { type: 'object', properties: {} };

export const TOOL_SCHEMAS: Record<ToolName, ToolSchema> = {
  send_message: {
    description:
      'Send a message to the chat right away, e.g. a progress update while you keep working. Without chat_jid it goes to the chat this conversation belongs to.',
    input_schema: {
      type: 'object',
      properties: {
        text: {
          type: 'string',
          description: 'The message text',
        },
        chat_jid: CHAT_JID,
      },
      required: ['text'],
    },
  },
  schedule_task: {
    description:
      'Schedule a prompt to run later or repeatedly. Examples: cron "0 9 * * 1-5" (weekdays 9:00), interval "3600000" (hourly), once "2030-01-01T09:00:00". Its output is sent to the chat.',
    input_schema: {
      type: 'object',
      properties: {
        prompt: {
          type: 'string',
          description: 'What the agent should do when the task runs',
        },
        schedule_type: SCHEDULE_TYPE,
        schedule_value: {
          type: 'string',
          description: 'The cron expression, interval in ms, or ISO timestamp',
        },
        context_mode: CONTEXT_MODE,
        target_group_folder: {
          description: "Another group's folder; only the main group may schedule for other groups",
          type: 'string',
        },
      },
      required: ['prompt', 'schedule_type', 'schedule_value'],
    },
  },
  list_tasks: {
    description: 'List the scheduled tasks this chat may see.',
    input_schema: NO_INPUT,
  },
  get_task: {
    description: 'Show one scheduled task with its recent runs.',
    input_schema: TASK_ID_ONLY,
  },
  update_task: {
    description: "Change a scheduled task's prompt or schedule.",
    input_schema: {
      type: 'object',
      properties: {
        task_id: TASK_ID,
        prompt: {
          type: 'string',
        },
        schedule_type: SCHEDULE_TYPE,
        schedule_value: {
          type: 'string',
        },
        context_mode: CONTEXT_MODE,
      },
      required: ['task_id'],
    },
  },
  pause_task: {
    description: 'Pause a scheduled task until it is resumed.',
    input_schema: TASK_ID_ONLY,
  },
  resume_task: {
    description: 'Resume a paused task.',
    input_schema: TASK_ID_ONLY,
  },
  cancel_task: {
    description: 'Delete a scheduled task for good.',
    input_schema: TASK_ID_ONLY,
  },
  list_groups: {
    description:
      'List the chats seen on the channels, newest activity first, with their ids, names, channel and, for registered ones, folder, trigger, mounts and run timeout (main group only). Use it to find the jid for register_group.',
    input_schema: NO_INPUT,
  },
  register_group: {
    description: 'Register a chat so the assistant answers there (main group only).',
    input_schema: {
      type: 'object',
      properties: {
        jid: {
          type: 'string',
          description: 'The chat id, e.g. from list_groups',
        },
        name: {
          type: 'string',
          description: 'Display name',
        },
        folder: {
          type: 'string',
          description: 'Folder name: lowercase letters, digits and dashes, e.g. "family-chat"',
        },
        trigger: {
          type: 'string',
          description: 'Wake word, e.g. "@Andy"',
        },
        requires_trigger: {
          description: 'When false the assistant answers every message (default true)',
          type: 'boolean',
        },
        allowed_senders: {
          description:
            'Only these senders may wake the assistant there, e.g. ["491701234567@s.whatsapp.net"]; others\' messages are kept as context. Omit to let everyone (default)',
          type: 'array',
          items: {
            type: 'string',
          },
        },
        mounts: {
          description:
            "Host directories the group's agent may see; checked at once against the owner's mount allowlist (a refusal says why). Omit for none",
          type: 'array',
          items: {
            type: 'object',
            properties: {
              hostPath: {
                type: 'string',
                description: 'A host directory, absolute or starting with ~/, e.g. "~/projects/webapp"',
              },
              containerPath: {
                description:
                  'Name under /workspace/extra/ in that group, e.g. "webapp" (default: the basename)',
                type: 'string',
              },
              readonly: {
                description: 'Default true; false needs a read-write allowed root',
                type: 'boolean',
              },
            },
            required: ['hostPath'],
          },
        },
      },
      required: ['jid', 'name', 'folder', 'trigger'],
    },
  },
  unregister_group: {
    description: 'Stop answering in a registered chat (main group only).',
    input_schema: {
      type: 'object',
      properties: {
        jid: {
          type: 'string',
          description: 'The chat id',
        },
      },
      required: ['jid'],
    },
  },
  read_egress_allowlist: {
    description: 'Show which internet hosts this sandbox may reach through the proxy.',
    input_schema: NO_INPUT,
  },
  send_file: {
    description:
      'Send a file from your working directory (the group folder) to the chat: images go as photos, anything else as a document. Without chat_jid it goes to the chat this conversation belongs to.',
    input_schema: {
      type: 'object',
      properties: {
        path: {
          type: 'string',
          description:
            'The file, relative to your working directory or absolute under /workspace/group, e.g. "report.pdf"',
        },
        caption: {
          description: 'Text shown with the file',
          type: 'string',
        },
        chat_jid: CHAT_JID,
      },
      required: ['path'],
    },
  },
};
