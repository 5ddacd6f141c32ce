// Domain types shared by every module. Plain data only: no I/O, no classes.
// Times: ISO-8601 strings where a human reads them (messages, audit), epoch
// milliseconds where code computes with them (scheduling, backoff).

import type { Engine } from './protocol.js';

/** An extra host directory a group may see, subject to the mount policy (SPEC §9). */
export interface AdditionalMount {
  /** Host path; `~` and symlinks are resolved before checking. */
  hostPath: string;
  /** Relative path under `/workspace/extra/`; defaults to the host path's basename. */
  containerPath?: string;
  /** Defaults to true; read-write needs the allowlist root to allow it too. */
  readonly?: boolean;
}

export interface ContainerConfig {
  additionalMounts?: AdditionalMount[];
  /** Overrides the global run timeout for this group. */
  runTimeoutMs?: number;
  /** Overrides the configured agent engine for this group (`groups edit --engine`). */
  engine?: Engine;
  /** `openai`: the lite engine talks to the configured OpenAI-compatible provider instead of Anthropic. */
  provider?: 'anthropic' | 'openai';
}

/** A registered chat (SPEC §1). */
export interface Group {
  jid: string;
  name: string;
  folder: string;
  /** The group's own wake word, e.g. `@Andy`. */
  trigger: string;
  requiresTrigger: boolean;
  isMain: boolean;
  containerConfig: ContainerConfig;
  /**
   * Sender ids (as stored: `491701234567@s.whatsapp.net`, `local:alice`) whose
   * messages may wake the group; null means everyone. Others' messages are kept
   * as context. Main ignores it (SPEC §2.5).
   */
  allowedSenders: string[] | null;
  /** Tokens per day; null means unlimited (SPEC §11). */
  dailyTokenBudget: number | null;
  addedAt: string;
}

/** Any conversation a channel has seen; only metadata is kept for unregistered ones. */
export interface ChatInfo {
  jid: string;
  name: string | null;
  channel: string;
  lastActivity: string;
}

/** A message as a channel hands it to the host, before it is stored. */
export interface InboundMessage {
  chatJid: string;
  /** The channel's own message id; unique per chat (redelivery is stored once). */
  id: string;
  sender: string;
  senderName: string;
  /** Null or empty for events that carry no text (stored as metadata only, SPEC §12). */
  text: string | null;
  timestamp: string;
  /** Sent from the owner's own account (may still be a human typing in the self-chat). */
  fromMe: boolean;
  /** Sent by the assistant itself: stored, never input (SPEC §2.4). */
  isBotMessage: boolean;
  /**
   * Written by the owner: their own WhatsApp account (not the assistant's replies
   * through it), or the local terminal in local:main. Absent means false.
   */
  fromOwner?: boolean;
  chatName?: string;
  /** The message this one quotes (a reply); the host fills in what the channel did not know. */
  replyTo?: InboundReply;
  /** Files the channel can fetch (photos, voice notes, documents); the host stores them before the message. */
  attachments?: InboundAttachment[];
  /** Files already stored in the group's folder (set by the host's media step, not by channels). */
  media?: Attachment[];
}

/** What kind of file a message carries, as the channel saw it. */
export type MediaKind = 'image' | 'audio' | 'voice' | 'video' | 'sticker' | 'document';

/** A file a channel can hand over: opened only once the host decided to keep it. */
export interface InboundAttachment {
  kind: MediaKind;
  /** MIME type, e.g. `image/jpeg`; empty when the channel does not know it. */
  type: string;
  /** Size the channel announced before download, when it knows it. */
  declaredBytes?: number;
  /** The sender's file name (documents), shown to the agent. */
  fileName?: string;
  /** The file's bytes; the host stops reading past its size cap. */
  open(): Promise<AsyncIterable<Uint8Array>>;
}

/** A stored file of a message: its path is relative to the group folder (the agent's working directory). */
export interface Attachment {
  path: string;
  type: string;
  sizeBytes: number;
}

/** What a channel knows of a quoted message: at least its id. */
export interface InboundReply {
  id: string;
  senderName?: string;
  /** The quoted text; cut to an excerpt when stored. */
  text?: string;
}

/** A quoted message as stored and shown in the prompt. */
export interface ReplyContext {
  id: string;
  /** Null when neither the channel nor the store knew who wrote it. */
  senderName: string | null;
  /** At most QUOTE_EXCERPT_CHARS characters; null when the quoted text is unknown. */
  excerpt: string | null;
}

export interface StoredMessage {
  /** Global, monotonically increasing: the only thing cursors compare. */
  seq: number;
  chatJid: string;
  id: string;
  sender: string;
  senderName: string;
  text: string;
  timestamp: string;
  fromMe: boolean;
  isBotMessage: boolean;
  /** See InboundMessage.fromOwner. */
  fromOwner: boolean;
  /** Set when the message quotes another (SPEC §2.7). */
  replyTo?: ReplyContext | null;
  /** Files stored with the message (photos, voice notes, documents). */
  media?: Attachment[];
}

export type ScheduleType = 'cron' | 'interval' | 'once';
export type ContextMode = 'group' | 'isolated';
export type TaskStatus = 'active' | 'paused' | 'completed' | 'error';

export interface Task {
  id: string;
  groupFolder: string;
  chatJid: string;
  prompt: string;
  scheduleType: ScheduleType;
  scheduleValue: string;
  contextMode: ContextMode;
  status: TaskStatus;
  /** Epoch ms of the next due time; null when not scheduled (paused, completed, error). */
  nextRunAt: number | null;
  lastRunAt: number | null;
  lastResult: string | null;
  createdAt: string;
}

export type TaskRunStatus = 'success' | 'error';

export interface TaskRunLog {
  id: number;
  taskId: string;
  startedAt: number;
  durationMs: number;
  status: TaskRunStatus;
  /** Truncated result or error text. */
  result: string | null;
  error: string | null;
}

export type OutboxStatus = 'pending' | 'sent' | 'failed';

/** One chunk of outbound text, already formatted for its channel (SPEC §3). */
export interface OutboxItem {
  id: number;
  chatJid: string;
  /** The message, or the caption of a file (may be empty then). */
  text: string;
  /** A file to send (absolute host path, inside the group's folder); null for text. */
  file?: OutboundFile | null;
  status: OutboxStatus;
  attempts: number;
  /** Epoch ms before which no delivery is tried. */
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
}

/** A file the agent sends (SPEC: send_file): images go as images, the rest as documents. */
export interface OutboundFile {
  /** Absolute host path. */
  path: string;
  type: string;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}
