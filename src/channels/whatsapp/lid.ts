// WhatsApp increasingly addresses people by LID (`…@lid`), an id unrelated to
// the phone number. Groups, triggers and the main chat are keyed by phone JIDs
// (`…@s.whatsapp.net`), so every inbound JID is translated before the host sees it.

export const PN_SERVER = 's.whatsapp.net';
export const LID_SERVER = 'lid';

/** Splits `user:device@server` (device optional) into its parts. */
export function splitJid(jid: string): { user: string; server: string } | null {
  const at = jid.lastIndexOf('@');
  if (at <= 0) return null;
  const user = jid.slice(0, at).split(':')[0];
  if (!user) return null;
  return { user, server: jid.slice(at + 1) };
}

/** Drops the device suffix: `123:4@s.whatsapp.net` → `123@s.whatsapp.net`. */
export function normalizeJid(jid: string): string {
  const parts = splitJid(jid);
  return parts ? `${parts.user}@${parts.server}` : jid;
}

export function isLidJid(jid: string): boolean {
  return jid.endsWith(`@${LID_SERVER}`);
}

export function isPhoneJid(jid: string): boolean {
  return jid.endsWith(`@${PN_SERVER}`);
}

export interface LidResolverOptions {
  /** Baileys' mapping store lookup (`signalRepository.lidMapping.getPNForLID`). */
  lookup: (lid: string) => Promise<string | null>;
  /** The linked account, whose own LID never needs a lookup. */
  ownAccount: () => { id: string; lid?: string } | undefined;
  maxEntries: number;
}

export class LidResolver {
  private readonly cache = new Map<string, string>();

  constructor(private readonly options: LidResolverOptions) {}

  /**
   * The phone JID for `jid`, or `jid` itself (device suffix dropped) when it is
   * not a LID or no mapping is known yet. `alt` is Baileys' alternate address
   * for the same key (`remoteJidAlt`/`participantAlt`), used when it is a PN.
   */
  async toPhoneJid(jid: string, alt?: string | null): Promise<string> {
    const normalized = normalizeJid(jid);
    if (!isLidJid(normalized)) return normalized;

    const cached = this.cache.get(normalized);
    if (cached) {
      this.remember(normalized, cached);
      return cached;
    }

    let phone: string | null = null;
    const own = this.options.ownAccount();
    if (own?.lid && normalizeJid(own.lid) === normalized) phone = normalizeJid(own.id);
    else if (alt && isPhoneJid(alt)) phone = normalizeJid(alt);
    else {
      const mapped = await this.options.lookup(normalized).catch(() => null);
      if (mapped && isPhoneJid(normalizeJid(mapped))) phone = normalizeJid(mapped);
    }
    // Unknown LIDs are not cached: the mapping may arrive with a later message.
    if (!phone) return normalized;
    this.remember(normalized, phone);
    return phone;
  }

  private remember(lid: string, phone: string): void {
    this.cache.delete(lid);
    this.cache.set(lid, phone);
    if (this.cache.size > this.options.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  get size(): number {
    return this.cache.size;
  }
}
