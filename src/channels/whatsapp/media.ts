// Which file a WhatsApp message carries (issue 13): images, voice notes and
// audio, videos (their inline JPEG preview stands in for the video: small, no
// download, enough for the agent to see what it shows), stickers and documents.
// The file is fetched only when the host asks (`open`), so chats that are not
// registered never cost a download, and the announced size lets the host refuse
// a file over its cap before fetching it.

import type { InboundAttachment, MediaKind } from '../../core/types.js';
import { unwrapContent } from './parse.js';
import type { LongLike, WAContentLike, WAMessageLike } from './types.js';

export interface WAMedia {
  kind: MediaKind;
  type: string;
  declaredBytes?: number;
  fileName?: string;
  /** The sender's caption; null when there is none. */
  caption: string | null;
  /** Set for videos: the preview stored instead of the video. */
  thumbnail?: Uint8Array;
}

function bytesOf(value: number | LongLike | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const n = typeof value === 'number' ? value : value.toNumber();
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function caption(value: string | null | undefined): string | null {
  return value && value.trim() !== '' ? value : null;
}

/** The media of a message, or null when it carries none. */
export function mediaOf(content: WAContentLike | null | undefined): WAMedia | null {
  const m = unwrapContent(content);
  if (!m) return null;
  if (m.imageMessage) {
    const image = m.imageMessage;
    return {
      kind: 'image',
      type: image.mimetype ?? 'image/jpeg',
      declaredBytes: bytesOf(image.fileLength),
      caption: caption(image.caption),
    };
  }
  const video = m.videoMessage ?? m.ptvMessage;
  if (video) {
    const thumbnail = video.jpegThumbnail && video.jpegThumbnail.length > 0 ? video.jpegThumbnail : undefined;
    return {
      kind: 'video',
      type: 'image/jpeg',
      declaredBytes: thumbnail?.length,
      caption: caption(video.caption),
      ...(thumbnail ? { thumbnail } : {}),
    };
  }
  if (m.audioMessage) {
    const audio = m.audioMessage;
    return {
      kind: audio.ptt ? 'voice' : 'audio',
      type: audio.mimetype ?? 'audio/ogg',
      declaredBytes: bytesOf(audio.fileLength),
      caption: null,
    };
  }
  if (m.stickerMessage) {
    const sticker = m.stickerMessage;
    return {
      kind: 'sticker',
      type: sticker.mimetype ?? 'image/webp',
      declaredBytes: bytesOf(sticker.fileLength),
      caption: null,
    };
  }
  if (m.documentMessage) {
    const doc = m.documentMessage;
    const type = doc.mimetype ?? 'application/octet-stream';
    const fileName = doc.fileName ?? doc.title ?? undefined;
    return {
      // An image sent "as a file" stays a document: the sender chose not to send a photo.
      kind: 'document',
      type,
      declaredBytes: bytesOf(doc.fileLength),
      ...(fileName ? { fileName } : {}),
      caption: caption(doc.caption),
    };
  }
  return null;
}

/** The attachment the host fetches: the video preview from the message itself, anything else downloaded. */
export function attachmentOf(
  media: WAMedia,
  raw: WAMessageLike,
  download: (message: WAMessageLike) => Promise<AsyncIterable<Uint8Array>>,
): InboundAttachment {
  const base = {
    kind: media.kind,
    type: media.type,
    ...(media.declaredBytes !== undefined ? { declaredBytes: media.declaredBytes } : {}),
    ...(media.fileName ? { fileName: media.fileName } : {}),
  };
  if (media.kind === 'video') {
    const thumbnail = media.thumbnail;
    return {
      ...base,
      open: async () => {
        if (!thumbnail) throw new Error('the video has no preview image');
        return (async function* () {
          yield thumbnail;
        })();
      },
    };
  }
  return { ...base, open: () => download(raw) };
}
