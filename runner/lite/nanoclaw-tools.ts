// The nanoclaw tools (send_message, schedule_task, …) as Messages API tool
// definitions, derived from the same specs the claude-code engine's MCP server
// uses, so both engines offer the same tools with the same wording. Calls go to
// the host over the protocol, which validates and authorizes them.

import { z } from 'zod';
import { TOOL_NAMES, type ToolName } from '../../src/core/protocol.js';
import { TOOL_SPECS } from '../tools.js';
import type { ToolDefinition } from './messages-api.js';

export function nanoclawToolDefinitions(): ToolDefinition[] {
  return TOOL_NAMES.map((name) => {
    const spec: { description: string; shape: z.ZodRawShape } = TOOL_SPECS[name];
    const { $schema: _schema, ...schema } = z.toJSONSchema(z.object(spec.shape), { io: 'input' });
    return { name, description: spec.description, input_schema: schema };
  });
}

export function isNanoclawTool(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}
