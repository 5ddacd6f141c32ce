// Media rules shared by channels and the host (issue 13): which file type gets
// which extension, what a message without text says in place of its file, and
// where a group keeps its media. Pure: the storing is in runs/media.ts.

import type { MediaKind } from './types.js';

/** Known types and their extensions; anything else keeps the sender's extension or becomes `.bin`. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'audio/ogg': 'ogg',
  'audio/opus': 'opus',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'video/mp4': 'mp4',
  'video/3gpp': '3gp',
  'application/pdf': 'pdf',
  'text/plain': 'txt',
  'text/csv': 'csv',
  'text/markdown': 'md',
  'application/json': 'json',
  'application/zip': 'zip',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'application/vnd.ms-powerpoint': 'ppt',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'pptx',
  'application/vnd.oasis.opendocument.text': 'odt',
};

const TYPES_BY_EXTENSION: Readonly<Record<string, string>> = {
  ...Object.fromEntries(Object.entries(EXTENSIONS).map(([type, ext]) => [ext, type])),
  jpeg: 'image/jpeg',
  oga: 'audio/ogg',
  wav: 'audio/wav',
  txt: 'text/plain',
};

const SAFE_EXTENSION = /^[a-z0-9]{1,8}$/;

/** The bare MIME type (`audio/ogg; codecs=opus` → `audio/ogg`), lower-cased. */
export function bareType(type: string): string {
  return type.split(';')[0].trim().toLowerCase();
}

/** The extension a stored file gets: from its type, else from the sender's name, else `bin`. */
export function extensionFor(type: string, fileName?: string): string {
  const known = EXTENSIONS[bareType(type)];
  if (known) return known;
  const fromName = fileName?.split('.').at(-1)?.toLowerCase();
  return fromName && fileName?.includes('.') && SAFE_EXTENSION.test(fromName) ? fromName : 'bin';
}

/** A type guessed from a file name (the local channel's attachments without a type). */
export function typeForFileName(fileName: string): string {
  const ext = fileName.split('.').at(-1)?.toLowerCase() ?? '';
  return TYPES_BY_EXTENSION[ext] ?? 'application/octet-stream';
}

/** What kind of file a type is, when the channel did not say. */
export function kindOfType(type: string): MediaKind {
  const bare = bareType(type);
  if (bare.startsWith('image/')) return 'image';
  if (bare.startsWith('audio/')) return 'audio';
  if (bare.startsWith('video/')) return 'video';
  return 'document';
}

/** Images the channels send as photos (the rest go as documents). */
export function isPhotoType(type: string): boolean {
  return ['image/jpeg', 'image/png', 'image/webp', 'image/gif'].includes(bareType(type));
}

/** The text a file stands for when its message has none: what the agent sees besides the attachment. */
export function mediaPlaceholder(kind: MediaKind, fileName?: string): string {
  switch (kind) {
    case 'image':
      return '[image]';
    case 'voice':
      return '[voice message]';
    case 'audio':
      return '[audio]';
    case 'video':
      return '[video]';
    case 'sticker':
      return '[sticker]';
    case 'document':
      return fileName ? `[document: ${fileName}]` : '[document]';
  }
}

/** The prefix of a transcribed voice note's text. */
export const TRANSCRIBED_PREFIX = '[voice message, transcribed]';

/** Group-relative directory of one day's media: `media/<YYYY-MM-DD>` (UTC day of the message). */
export function mediaDayDir(timestampMs: number): string {
  return `media/${new Date(timestampMs).toISOString().slice(0, 10)}`;
}

/** A message id as a file name: anything but letters, digits, `-` and `_` becomes `_`. */
export function fileSafeId(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100);
  return safe === '' ? 'file' : safe;
}

/** Human size for notes: `12.5 MB`. */
export function formatMb(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  return `${mb >= 10 ? Math.round(mb) : Math.round(mb * 10) / 10} MB`;
}
