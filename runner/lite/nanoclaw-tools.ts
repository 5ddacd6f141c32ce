// The nanoclaw tools (send_message, schedule_task, …) as Messages API tool
// definitions, from the plain JSON schemas the claude-code engine's zod shapes
// are checked against, so both engines offer the same tools with the same
// wording without lite loading zod. Calls go to the host over the protocol,
// which validates and authorizes them.

import { TOOL_NAMES, type ToolName } from '../../src/core/protocol-frame.js';
import { TOOL_SCHEMAS } from '../tool-schemas.js';
import type { ToolDefinition } from './messages-api.js';

export function nanoclawToolDefinitions(): ToolDefinition[] {
  return TOOL_NAMES.map((name) => ({ name, ...structuredClone(TOOL_SCHEMAS[name]) }));
}

export function isNanoclawTool(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}
