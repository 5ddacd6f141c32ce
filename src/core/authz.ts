// The authorization table of SPEC §7 as one pure function. The caller's identity
// comes from the run the host started, never from anything the agent says.

import type { ToolName } from './protocol.js';

export interface ToolCaller {
  folder: string;
  isMain: boolean;
  chatJid: string;
}

export interface ToolRequest {
  tool: ToolName;
  /** send_message, send_file: the chat to send to; absent means the caller's own chat. */
  targetChatJid?: string;
  /** schedule_task: the group to schedule for; absent means the caller's own group. */
  targetGroupFolder?: string;
  /** get/update/pause/resume/cancel_task: the folder of the group owning the task, looked up by the host. */
  taskOwnerFolder?: string;
}

export type AuthzDecision = { allowed: true } | { allowed: false; reason: 'not_authorized'; message: string };

const ALLOWED: AuthzDecision = { allowed: true };

// Messages name the refused action and the rule, never the target's data: the
// agent learns nothing about other groups from a refusal.
function refuse(tool: ToolName, why: string): AuthzDecision {
  return { allowed: false, reason: 'not_authorized', message: `${tool} refused: ${why}` };
}

/** Main sees every task; other groups only their own (the caller filters). */
export function canSeeAllTasks(caller: Pick<ToolCaller, 'isMain'>): boolean {
  return caller.isMain;
}

export function authorizeTool(caller: ToolCaller, request: ToolRequest): AuthzDecision {
  if (caller.isMain) return ALLOWED;
  switch (request.tool) {
    case 'send_message':
    case 'send_file':
      return request.targetChatJid === undefined || request.targetChatJid === caller.chatJid
        ? ALLOWED
        : refuse(
            request.tool,
            'only the main group can send to another chat; this group can send to its own chat',
          );
    case 'schedule_task':
      return request.targetGroupFolder === undefined || request.targetGroupFolder === caller.folder
        ? ALLOWED
        : refuse('schedule_task', 'only the main group can schedule tasks for another group');
    case 'list_tasks':
      return ALLOWED;
    case 'get_task':
    case 'update_task':
    case 'pause_task':
    case 'resume_task':
    case 'cancel_task':
      // An unknown owner fails closed: a non-main group acts only on tasks proven to be its own.
      return request.taskOwnerFolder !== undefined && request.taskOwnerFolder === caller.folder
        ? ALLOWED
        : refuse(
            request.tool,
            "this group can only access its own tasks; that task is not one of this group's",
          );
    case 'list_groups':
      return refuse('list_groups', 'only the main group can list groups and chats');
    case 'register_group':
      return refuse('register_group', 'only the main group can register groups');
    case 'unregister_group':
      return refuse('unregister_group', 'only the main group can unregister groups');
    case 'read_egress_allowlist':
      return refuse('read_egress_allowlist', 'only the main group can read egress allowlists');
    default: {
      // Exhaustiveness: a new tool must get an explicit row here before it compiles.
      const unknownTool: never = request.tool;
      return refuse(unknownTool, 'unknown tool');
    }
  }
}
