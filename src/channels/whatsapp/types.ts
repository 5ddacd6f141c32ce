// The narrow slice of Baileys this channel relies on. Everything else in the
// channel is written against these shapes, so the test fake implements exactly
// them and a Baileys upgrade shows up as a type error in socket.ts only.

/** Baileys' `DisconnectReason` codes we act on (rc14 values). */
export const DisconnectCode = {
  /** Also what Baileys reports for a DNS or socket error (see disconnect.ts). */
  timedOut: 408,
  loggedOut: 401,
  connectionReplaced: 440,
  restartRequired: 515,
} as const;

/** `Long` from protobufjs, as far as we need it. */
export interface LongLike {
  toNumber(): number;
}

/** Baileys' `ContextInfo`: set on a message that quotes (replies to) another. */
export interface ContextInfoLike {
  /** The quoted message's id. */
  stanzaId?: string | null;
  /** The quoted message's author. */
  participant?: string | null;
  quotedMessage?: WAContentLike | null;
}

/** Media and other content kinds we only need to recognise or read a caption from. */
export interface CaptionedLike extends MediaFieldsLike {
  caption?: string | null;
  contextInfo?: ContextInfoLike | null;
}

/** What a media message says about its file before it is downloaded. */
export interface MediaFieldsLike {
  mimetype?: string | null;
  /** Bytes, as announced by the sender. */
  fileLength?: number | LongLike | null;
  /** A small inline JPEG preview (videos carry one). */
  jpegThumbnail?: Uint8Array | null;
}

export interface WAContentLike {
  conversation?: string | null;
  extendedTextMessage?: { text?: string | null; contextInfo?: ContextInfoLike | null } | null;
  imageMessage?: CaptionedLike | null;
  videoMessage?: (CaptionedLike & { gifPlayback?: boolean | null }) | null;
  ptvMessage?: CaptionedLike | null;
  documentMessage?: (CaptionedLike & { fileName?: string | null; title?: string | null }) | null;
  documentWithCaptionMessage?: { message?: WAContentLike | null } | null;
  audioMessage?: (MediaFieldsLike & { ptt?: boolean | null; contextInfo?: ContextInfoLike | null }) | null;
  stickerMessage?: (MediaFieldsLike & { contextInfo?: ContextInfoLike | null }) | null;
  locationMessage?: { name?: string | null; address?: string | null } | null;
  liveLocationMessage?: object | null;
  contactMessage?: { displayName?: string | null } | null;
  contactsArrayMessage?: { displayName?: string | null } | null;
  pollCreationMessage?: { name?: string | null } | null;
  pollCreationMessageV2?: { name?: string | null } | null;
  pollCreationMessageV3?: { name?: string | null } | null;
  eventMessage?: { name?: string | null } | null;
  buttonsResponseMessage?: { selectedDisplayText?: string | null } | null;
  listResponseMessage?: { title?: string | null } | null;
  templateButtonReplyMessage?: { selectedDisplayText?: string | null } | null;
  ephemeralMessage?: { message?: WAContentLike | null } | null;
  viewOnceMessage?: { message?: WAContentLike | null } | null;
  viewOnceMessageV2?: { message?: WAContentLike | null } | null;
  viewOnceMessageV2Extension?: { message?: WAContentLike | null } | null;
  editedMessage?: object | null;
  protocolMessage?: object | null;
  reactionMessage?: object | null;
  encReactionMessage?: object | null;
  pollUpdateMessage?: object | null;
}

export interface WAMessageKeyLike {
  remoteJid?: string | null;
  fromMe?: boolean | null;
  id?: string | null;
  participant?: string | null;
  /** Baileys 7: the other addressing form of `remoteJid` (PN when the chat is addressed by LID). */
  remoteJidAlt?: string;
  participantAlt?: string;
}

export interface WAMessageLike {
  key: WAMessageKeyLike;
  message?: WAContentLike | null;
  /** Seconds since the epoch. */
  messageTimestamp?: number | LongLike | null;
  pushName?: string | null;
  participant?: string | null;
}

export interface ConnectionUpdateLike {
  connection?: 'open' | 'connecting' | 'close';
  lastDisconnect?: { error: Error | undefined; date: Date };
  qr?: string;
  isNewLogin?: boolean;
}

export interface WAEventMapLike {
  'connection.update': Partial<ConnectionUpdateLike>;
  'messages.upsert': { messages: WAMessageLike[]; type: 'notify' | 'append'; requestId?: string };
  'groups.update': { id?: string; subject?: string }[];
  /** Groups the account joined or was added to, with their metadata. */
  'groups.upsert': { id: string; subject?: string }[];
}

export type WAEventName = keyof WAEventMapLike;
export type WAListener<E extends WAEventName> = (arg: WAEventMapLike[E]) => void;

/** The subset of Baileys' `WASocket` the channel and the pairing flow use. */
/** What the channel sends: text, a photo or a document (files are read from disk by Baileys). */
export type WAOutboundContent =
  | { text: string }
  | { image: { url: string }; caption?: string; mimetype?: string }
  | { document: { url: string }; mimetype: string; fileName: string; caption?: string };

export interface WASocketLike {
  ev: {
    on<E extends WAEventName>(event: E, listener: WAListener<E>): void;
    off<E extends WAEventName>(event: E, listener: WAListener<E>): void;
  };
  /** The linked account; `id` is `<number>:<device>@s.whatsapp.net`, `lid` its `@lid` twin. */
  user: { id: string; lid?: string; name?: string } | undefined;
  authState: { creds: { registered: boolean } };
  signalRepository: { lidMapping: { getPNForLID(lid: string): Promise<string | null> } };
  groupFetchAllParticipating(): Promise<Record<string, { id: string; subject: string }>>;
  sendMessage(jid: string, content: WAOutboundContent): Promise<unknown>;
  sendPresenceUpdate(type: 'composing' | 'paused', toJid?: string): Promise<void>;
  /** The decrypted file of a media message, as a stream (Baileys' downloadMediaMessage). */
  downloadMedia(message: WAMessageLike): Promise<AsyncIterable<Uint8Array>>;
  requestPairingCode(phoneNumber: string): Promise<string>;
  end(error: Error | undefined): Promise<void> | void;
}

/**
 * Builds a socket for the credentials in `authDir`. The real one (socket.ts)
 * loads the multi-file auth state there and saves credential updates itself,
 * so callers never see Baileys' auth types.
 */
export type SocketFactory = (authDir: string) => Promise<WASocketLike>;

/** Timer injection: the same shape as `setTimeout`/`clearTimeout`. */
export type SetTimer = (callback: () => void, delayMs: number) => unknown;
export type ClearTimer = (handle: unknown) => void;
