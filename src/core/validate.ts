// Validation of identifiers that reach the file system or a transport (SPEC §1,
// §12). Each check returns null when valid, else a message naming the field and
// showing a valid example, so the agent or owner can fix it without guessing.

/** `global` is shared memory; `main` belongs to the main group alone. */
export const RESERVED_FOLDERS: readonly string[] = ['global', 'main'];

const FOLDER_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
const TRIGGER_MAX_CHARS = 32;

const JID_PATTERNS: readonly RegExp[] = [
  /^[0-9]{1,32}@s\.whatsapp\.net$/,
  // Classic `<creator>-<time>` groups and newer opaque ids (digits, sometimes letters).
  /^[0-9A-Za-z]{1,64}(?:-[0-9]{1,32})?@g\.us$/,
  /^[0-9]{1,32}@lid$/,
  /^local:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
];

// Sender ids as the channels store them: a phone JID, a LID, or a local name.
const SENDER_PATTERNS: readonly RegExp[] = [
  /^[0-9]{1,32}@s\.whatsapp\.net$/,
  /^[0-9]{1,32}@lid$/,
  /^local:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
];
/** Bounds the per-message check and the stored JSON. */
export const MAX_ALLOWED_SENDERS = 256;

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

export function validateFolder(folder: unknown, opts: { isMain?: boolean } = {}): string | null {
  if (typeof folder !== 'string' || !FOLDER_PATTERN.test(folder)) {
    return `folder ${show(folder)} is invalid: use 1–64 characters a-z, 0-9 and -, starting with a letter or digit, e.g. "family-chat"`;
  }
  if (folder === 'main' && opts.isMain === true) return null;
  if (RESERVED_FOLDERS.includes(folder)) {
    return `folder ${show(folder)} is reserved${folder === 'main' ? ' for the main group' : ''}: choose another name, e.g. "family-chat"`;
  }
  return null;
}

export function validateJid(jid: unknown): string | null {
  if (typeof jid === 'string' && JID_PATTERNS.some((p) => p.test(jid))) return null;
  return `jid ${show(jid)} is invalid: use a WhatsApp id such as "491701234567@s.whatsapp.net", "120363012345678901@g.us" or "123456789012345@lid", or a local chat such as "local:main"`;
}

export function validateTrigger(trigger: unknown): string | null {
  if (
    typeof trigger === 'string' &&
    trigger.length > 0 &&
    trigger.length <= TRIGGER_MAX_CHARS &&
    !/\s/.test(trigger)
  ) {
    return null;
  }
  return `trigger ${show(trigger)} is invalid: use 1–${TRIGGER_MAX_CHARS} characters without spaces, e.g. "@Andy"`;
}

export function validateSender(sender: unknown): string | null {
  if (typeof sender === 'string' && SENDER_PATTERNS.some((p) => p.test(sender))) return null;
  return `sender ${show(sender)} is invalid: use a WhatsApp id such as "491701234567@s.whatsapp.net" or "123456789012345@lid", or a local sender such as "local:alice"`;
}

/** A non-empty list; "everyone" is null, never an empty list (that would silence the group). */
export function validateAllowedSenders(senders: readonly unknown[]): string | null {
  if (senders.length === 0) {
    return 'allowed senders must list at least one sender, e.g. ["491701234567@s.whatsapp.net"]; to let everyone wake the group, clear the list instead';
  }
  if (senders.length > MAX_ALLOWED_SENDERS) {
    return `allowed senders may list at most ${MAX_ALLOWED_SENDERS} senders, got ${senders.length}`;
  }
  for (const sender of senders) {
    const problem = validateSender(sender);
    if (problem) return problem;
  }
  return null;
}
