// Inbound files (issue 13): between a channel and the router, a message that
// carries files has them stored in its group's folder
// (`groups/<folder>/media/<date>/<id>.<ext>`, so only that group's sandbox sees
// them), voice notes transcribed, and only then is it stored and routed. Per chat,
// messages keep their arrival order: a text sent after a photo waits for the photo.
// A file that is too big, over the group's quota or fails to download never loses
// its message: the message is kept with a placeholder and a note saying why.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../core/logger.js';
import {
  extensionFor,
  fileSafeId,
  formatMb,
  mediaDayDir,
  mediaPlaceholder,
  TRANSCRIBED_PREFIX,
} from '../core/media.js';
import type { Attachment, InboundAttachment, InboundMessage } from '../core/types.js';
import { measureDiskUsage } from './disk-usage.js';
import { writeFileAtomic } from './files.js';
import type { Transcriber } from './transcribe.js';

export const MEDIA_DIR = 'media';

export interface MediaIngestOptions {
  groupsDir: string;
  /** The registered group's folder for a chat, or undefined (files of other chats are never fetched). */
  groupFolderOf: (chatJid: string) => string | undefined;
  maxFileBytes: number;
  groupQuotaBytes: number;
  transcriber: Transcriber | null;
  logger: Logger;
  /** Hands the prepared message on (the router's ingest). */
  deliver: (message: InboundMessage) => void;
  /** A download that takes longer is given up (the message keeps a note): it must not hold its chat up. */
  downloadTimeoutMs?: number;
  /**
   * Where messages waiting here are journaled until stored, so a host that dies
   * mid-download still stores them (with a note) at the next start (`recover`).
   */
  journalDir?: string;
}

const RESTART_NOTE =
  '[note: the host restarted before this file was stored; ask the sender to send it again]';

const DEFAULT_DOWNLOAD_TIMEOUT_MS = 120_000;

/** Why a file was not stored, as the agent reads it in the message. */
type Refusal = { note: string };

export class MediaIngest {
  private readonly options: MediaIngestOptions;
  /** Per chat, the last message still being prepared: later ones queue behind it. */
  private readonly tails = new Map<string, Promise<void>>();
  private journaled = 0;

  constructor(options: MediaIngestOptions) {
    this.options = options;
  }

  accept(message: InboundMessage): void {
    const tail = this.tails.get(message.chatJid);
    const hasFiles = (message.attachments?.length ?? 0) > 0;
    if (!tail && !hasFiles) {
      this.options.deliver(message);
      return;
    }
    const journal = this.journal(hasFiles ? withoutFiles(message, [RESTART_NOTE]) : message);
    const next = (tail ?? Promise.resolve())
      .then(() => (hasFiles ? this.prepare(message) : message))
      .catch((err: unknown) => {
        this.options.logger.error({ err: String(err), chatJid: message.chatJid }, 'media not stored');
        return withoutFiles(message, ['[note: the attached file could not be stored]']);
      })
      .then((prepared) => {
        try {
          this.options.deliver(prepared);
        } catch (err) {
          // Not stored (the store closed under a late download): the journal stays, so the next start has it.
          this.options.logger.error({ err: String(err), chatJid: message.chatJid }, 'message not routed');
          return;
        }
        if (journal) fs.rmSync(journal, { force: true });
      })
      .finally(() => {
        if (this.tails.get(message.chatJid) === next) this.tails.delete(message.chatJid);
      });
    this.tails.set(message.chatJid, next);
  }

  /**
   * Hands on what a previous host accepted but never stored (it died while a
   * file downloaded), oldest first: as placeholders with a note. Redelivery is
   * harmless (the store keeps one message per chat and id). Returns how many.
   */
  recover(): number {
    const dir = this.options.journalDir;
    if (!dir || !fs.existsSync(dir)) return 0;
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort();
    for (const file of files) {
      const full = path.join(dir, file);
      try {
        this.options.deliver(JSON.parse(fs.readFileSync(full, 'utf8')) as InboundMessage);
      } catch (err) {
        this.options.logger.error({ err: String(err), file }, 'journaled message not stored');
        continue;
      }
      fs.rmSync(full, { force: true });
    }
    return files.length;
  }

  /** Writes the message as it is stored after a crash; null without a journal (or when the disk refuses). */
  private journal(message: InboundMessage): string | null {
    const dir = this.options.journalDir;
    if (!dir) return null;
    const name = `${String(Date.now()).padStart(15, '0')}-${String(++this.journaled).padStart(9, '0')}.json`;
    const file = path.join(dir, name);
    try {
      writeFileAtomic(file, JSON.stringify(message));
      return file;
    } catch (err) {
      // A full disk: the message still goes on in memory, as it would without a journal.
      this.options.logger.warn({ err: String(err) }, 'media journal not written');
      return null;
    }
  }

  /** Resolves once every accepted message was handed on. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  /** Stores the files and returns the message as the router stores it: `media` set, `attachments` gone. */
  private async prepare(message: InboundMessage): Promise<InboundMessage> {
    const folder = this.options.groupFolderOf(message.chatJid);
    const attachments = message.attachments ?? [];
    if (folder === undefined) return withoutFiles(message, []);
    const groupDir = path.join(this.options.groupsDir, folder);
    const timestampMs = Number.isFinite(Date.parse(message.timestamp))
      ? Date.parse(message.timestamp)
      : Date.now();
    const caption = message.text?.trim() ?? '';
    const lines: string[] = caption === '' ? [] : [caption];
    const media: Attachment[] = [];
    for (const [index, attachment] of attachments.entries()) {
      const placeholder = mediaPlaceholder(attachment.kind, attachment.fileName);
      const name = `${fileSafeId(message.id)}${index === 0 ? '' : `-${index}`}.${extensionFor(attachment.type, attachment.fileName)}`;
      const relative = `${mediaDayDir(timestampMs)}/${name}`;
      const stored = await this.store(attachment, groupDir, relative, placeholder);
      if ('note' in stored) {
        lines.push(`${placeholder} [note: ${stored.note}]`);
        continue;
      }
      media.push(stored);
      const spoken = attachment.kind === 'voice' || attachment.kind === 'audio';
      if (spoken && this.options.transcriber) {
        try {
          const text = await this.options.transcriber.transcribe({
            path: path.join(groupDir, relative),
            type: stored.type,
          });
          lines.push(`${TRANSCRIBED_PREFIX} ${text}`);
          continue;
        } catch (err) {
          this.options.logger.warn(
            { err: err instanceof Error ? err.message : String(err), chatJid: message.chatJid },
            'voice note not transcribed',
          );
        }
      }
      if (caption === '') lines.push(placeholder);
    }
    const { attachments: _dropped, ...rest } = message;
    return { ...rest, text: lines.join('\n'), media };
  }

  private async store(
    attachment: InboundAttachment,
    groupDir: string,
    relative: string,
    what: string,
  ): Promise<Attachment | Refusal> {
    const { maxFileBytes, groupQuotaBytes } = this.options;
    if (attachment.declaredBytes !== undefined && attachment.declaredBytes > maxFileBytes) {
      return {
        note: `not stored: ${formatMb(attachment.declaredBytes)} is over the ${formatMb(maxFileBytes)} limit per file`,
      };
    }
    const used = await measureDiskUsage([path.join(groupDir, MEDIA_DIR)], {
      stopAboveBytes: groupQuotaBytes,
      maxEntries: 100_000,
    });
    const room = groupQuotaBytes - used.bytes;
    if (used.exceeded || room < (attachment.declaredBytes ?? 1)) {
      return {
        note: `not stored: this chat's media quota of ${formatMb(groupQuotaBytes)} is full; ask the owner to raise groupMediaQuotaMb or delete old files in media/`,
      };
    }
    const cap = Math.min(maxFileBytes, room);
    const file = path.join(groupDir, relative);
    let size: number | 'too-big';
    try {
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(),
        this.options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS,
      );
      try {
        size = await saveCapped(await attachment.open(), file, cap, deadline.signal);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      this.options.logger.warn({ err: String(err), file: relative }, 'media download failed');
      return { note: `the ${what.replace(/^\[|\]$/g, '').replace(': ', ' ')} could not be downloaded` };
    }
    if (size === 'too-big') {
      return cap < maxFileBytes
        ? {
            note: `not stored: this chat's media quota of ${formatMb(groupQuotaBytes)} is full; ask the owner to raise groupMediaQuotaMb or delete old files in media/`,
          }
        : { note: `not stored: the file is over the ${formatMb(maxFileBytes)} limit per file` };
    }
    return { path: relative, type: attachment.type || 'application/octet-stream', sizeBytes: size };
  }
}

function withoutFiles(message: InboundMessage, notes: string[]): InboundMessage {
  const { attachments, ...rest } = message;
  const placeholders = (attachments ?? []).map((a) => mediaPlaceholder(a.kind, a.fileName));
  const caption = message.text?.trim() ?? '';
  return { ...rest, text: [...(caption === '' ? placeholders : [caption]), ...notes].join('\n') };
}

/**
 * Streams `source` into `file` (temp file, fsync, rename), stopping past
 * `maxBytes` (the partial file is removed). Returns the size, or 'too-big'.
 */
export async function saveCapped(
  source: AsyncIterable<Uint8Array>,
  file: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<number | 'too-big'> {
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await fsp.open(tmp, 'w', 0o644);
  const chunks = source[Symbol.asyncIterator]();
  let size = 0;
  let complete = false;
  try {
    for (;;) {
      const next = await nextOrAbort(chunks, signal);
      if (next.done) break;
      size += next.value.byteLength;
      if (size > maxBytes) break;
      await handle.write(next.value);
    }
    if (size <= maxBytes) {
      await handle.sync();
      complete = true;
    }
  } finally {
    // Stops the source (a download stream is destroyed) when we leave early.
    if (!complete) void chunks.return?.()?.catch(() => undefined);
    await handle.close();
    if (!complete) await fsp.rm(tmp, { force: true });
  }
  if (!complete) return 'too-big';
  await fsp.rename(tmp, file);
  return size;
}

/**
 * The source's next chunk, or a rejection once `signal` aborts: a source that
 * stops sending never settles its next(). The listener is removed after each
 * chunk (racing one long-lived promise instead would keep every chunk alive
 * until it settles).
 */
function nextOrAbort(
  chunks: AsyncIterator<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<IteratorResult<Uint8Array>> {
  if (!signal) return chunks.next();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new Error('the download took too long'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    chunks.next().then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Retention (issue 13): media goes with its messages. Day folders
 * (`media/<YYYY-MM-DD>`) whose whole day lies before the cutoff are deleted
 * in every group; returns how many were.
 */
export function pruneMedia(groupsDir: string, olderThanMs: number): number {
  let folders: string[];
  try {
    folders = fs.readdirSync(groupsDir);
  } catch {
    return 0;
  }
  return folders.reduce(
    (sum, folder) => sum + pruneDayDirs(path.join(groupsDir, folder, MEDIA_DIR), olderThanMs),
    0,
  );
}

/** Deletes the `YYYY-MM-DD` folders of `dir` whose whole day lies before the cutoff; returns how many. */
export function pruneDayDirs(dir: string, olderThanMs: number): number {
  const cutoffDay = new Date(olderThanMs).toISOString().slice(0, 10);
  let days: string[];
  try {
    days = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const day of days) {
    // String order is date order for YYYY-MM-DD; anything else there is left alone.
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || day >= cutoffDay) continue;
    fs.rmSync(path.join(dir, day), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
