// Audit records are payload-free by construction: actions and reasons are closed
// sets of codes, and the only free text is the target (a host, a path, a tool name).

export const AUDIT_ACTIONS = [
  'tool_call',
  'mount',
  'egress',
  'model_request',
  'run_start',
  'protocol',
  // storage trouble on the host (SPEC §12)
  'storage',
  // a live run stopped by a limit (SPEC §10.9)
  'run_limit',
  // the audit log itself: the rest of a run's refusals folded into one record
  'audit',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_REASONS = [
  // authorization (SPEC §7)
  'not_authorized',
  'unknown_tool',
  'invalid_args',
  'forged_identity',
  // mounts (SPEC §9)
  'no_allowlist',
  'outside_allowed_roots',
  'blocked_pattern',
  'invalid_container_path',
  'readonly_root',
  'path_missing',
  // egress (ARCHITECTURE broker)
  'host_not_allowlisted',
  'port_not_allowed',
  'private_address',
  'resolve_failed',
  'bad_request',
  // model proxy
  'bad_placeholder_key',
  'path_not_allowed',
  // broker, both proxies (SPEC §10.9, §10.10)
  'connection_limit',
  // run start
  'sandbox_unavailable',
  'credential_missing',
  'budget_exceeded',
  'unsandboxed_refused',
  // per-group and per-run limits (SPEC §10.9)
  'disk_quota_exceeded',
  'wall_time_exceeded',
  'task_limit',
  // send_file: a file outside the group's folder, or over the size cap
  'file_not_allowed',
  'file_too_large',
  // audit flood control (SPEC §10.8)
  'too_many_records',
  // protocol (SPEC §12)
  'malformed_line',
  'unknown_message_type',
  'output_limit',
  // storage (SPEC §12): the host keeps running; what is accepted is kept
  'disk_full',
  'disk_low',
  'storage_failed',
] as const;
export type AuditReason = (typeof AUDIT_REASONS)[number];

export interface AuditRecord {
  id: number;
  time: string;
  /** Group folder, or null when the refusal is not tied to a group. */
  group: string | null;
  runId: string | null;
  action: AuditAction;
  target: string | null;
  reason: AuditReason;
  /** How many identical refusals this record stands for (aggregated per run); 1 for a single one. */
  count: number;
}

export type NewAuditRecord = Omit<AuditRecord, 'id' | 'time' | 'count'> & { time?: string };

/** Where refusals are written; the store implements it, tests may collect. */
export interface AuditSink {
  audit(record: NewAuditRecord): void;
}
