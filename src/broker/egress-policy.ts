// The egress decision, kept pure so every bypass trick can be tested without a
// socket: canonicalise the target (all the spellings of an IP collapse to one),
// match it against the group's allowlist, then resolve on the host and refuse
// if any address is internal. The proxy dials only addresses this module checked.

import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

export type EgressRefusalReason =
  'host_not_allowlisted' | 'port_not_allowed' | 'private_address' | 'resolve_failed' | 'bad_request';

export type HostKind = 'domain' | 'ipv4' | 'ipv6';

export interface CanonicalHost {
  kind: HostKind;
  /** Lower-case domain without trailing dot, dotted-quad IPv4, or RFC 5952 IPv6 (no brackets). */
  host: string;
}

/** One compiled allowlist entry. */
export interface EgressRule {
  /** `exact` matches the host itself; `suffix` matches strict subdomains of `host`. */
  match: 'exact' | 'suffix';
  kind: HostKind;
  host: string;
  /** Null means the default web ports. */
  ports: readonly number[] | null;
  allowPrivate: boolean;
}

export type EgressRules = readonly EgressRule[];

export const DEFAULT_EGRESS_PORTS: readonly number[] = [80, 443];

export type Resolver = (host: string) => Promise<string[]>;

export type EgressDecision =
  | { ok: true; host: CanonicalHost; port: number; target: string; addresses: string[] }
  | { ok: false; reason: EgressRefusalReason; target: string | null };

// ---- canonicalisation ----------------------------------------------------

/**
 * Parses an IPv4 literal the way URL parsers and inet_aton do, so that every
 * form a client library might accept is recognised: 1–4 parts, each decimal,
 * octal (leading 0) or hex (0x); the last part fills the remaining bytes.
 * Returns null when the text is not numeric-looking, throws when it is but is invalid.
 */
export function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  // As in the WHATWG URL parser: a host is IPv4 iff its last label is a number.
  const last =
    parts[parts.length - 1] === '' && parts.length > 1 ? parts[parts.length - 2] : parts[parts.length - 1];
  if (!/^(0x[0-9a-f]*|[0-9]+)$/i.test(last)) return null;
  if (parts[parts.length - 1] === '' && parts.length > 1) parts.pop();
  if (parts.length > 4) throw new Error('too many parts');
  const numbers = parts.map((part) => {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) value = parseInt(part.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
    else throw new Error(`bad IPv4 part "${part}"`);
    if (!Number.isSafeInteger(value)) throw new Error('IPv4 part out of range');
    return value;
  });
  const lastValue = numbers.pop() as number;
  if (numbers.some((n) => n > 255)) throw new Error('IPv4 part out of range');
  if (lastValue >= 256 ** (4 - numbers.length)) throw new Error('IPv4 value out of range');
  let address = lastValue;
  numbers.forEach((n, i) => {
    address += n * 256 ** (3 - i);
  });
  return address;
}

export function formatIpv4(address: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join('.');
}

/** 16 bytes of an IPv6 literal already validated by `isIPv6` (no zone id). */
export function parseIpv6(text: string): Uint8Array {
  let body = text;
  const bytes = new Uint8Array(16);
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(body.slice(lastColon + 1));
    if (v4 === null) throw new Error('bad embedded IPv4');
    tail = [Math.floor(v4 / 65536), v4 % 65536];
    // Two placeholder groups keep the `::` expansion arithmetic right; replaced below.
    body = body.slice(0, lastColon + 1) + '0:0';
  }
  const [headText, tailText] = body.includes('::') ? body.split('::') : [body, null];
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = toGroups(headText);
  let groups: number[];
  if (tailText === null) {
    groups = head;
  } else {
    const rest = toGroups(tailText);
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  }
  if (tail.length === 2) groups.splice(6, 2, ...tail);
  if (groups.length !== 8) throw new Error('bad IPv6 literal');
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

/** RFC 5952: lower-case hex, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`. */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLength).join(':');
  return `${left}::${right}`;
}

function isIpv4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

function embeddedIpv4(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset] << 24) >>> 0) + (bytes[offset + 1] << 16) + (bytes[offset + 2] << 8) + bytes[offset + 3]
  );
}

const DOMAIN_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * The one spelling of a host used for matching, auditing and dialling. IPv4-mapped
 * IPv6 collapses to IPv4 so `[::ffff:127.0.0.1]` is treated exactly as `127.0.0.1`.
 * Throws on anything that is not a valid host.
 */
export function canonicalHost(raw: string): CanonicalHost {
  let text = raw.trim().toLowerCase();
  if (text.startsWith('[') || text.includes(':')) {
    if (text.startsWith('[')) {
      if (!text.endsWith(']')) throw new Error('unterminated IPv6 literal');
      text = text.slice(1, -1);
    }
    // Zone ids name a local interface: never a legitimate remote target.
    if (!isIPv6(text) || text.includes('%')) throw new Error('invalid IPv6 literal');
    const bytes = parseIpv6(text);
    if (isIpv4Mapped(bytes)) return { kind: 'ipv4', host: formatIpv4(embeddedIpv4(bytes, 12)) };
    return { kind: 'ipv6', host: formatIpv6(bytes) };
  }
  if (text.endsWith('.')) text = text.slice(0, -1);
  if (text === '') throw new Error('empty host');
  const v4 = parseIpv4(text);
  if (v4 !== null) return { kind: 'ipv4', host: formatIpv4(v4) };
  // IDNs are matched in their ASCII (punycode) form, the form DNS sees.
  const ascii = /^[\x21-\x7e]*$/.test(text) ? text : domainToASCII(text);
  if (ascii === '' || ascii.length > 253) throw new Error('invalid domain');
  const labels = ascii.split('.');
  if (!labels.every((label) => DOMAIN_LABEL.test(label))) throw new Error('invalid domain');
  // A punycoded name that now looks numeric would have been an IPv4 spelling.
  if (parseIpv4(ascii) !== null) throw new Error('invalid domain');
  return { kind: 'domain', host: ascii };
}

/** `host:port`, with IPv6 bracketed: the audit target and the error text. */
export function formatTarget(host: CanonicalHost, port: number): string {
  return host.kind === 'ipv6' ? `[${host.host}]:${port}` : `${host.host}:${port}`;
}

function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/** Splits a CONNECT authority (`host:port`, `[v6]:port`); the port is mandatory. */
export function parseAuthority(authority: string): { host: string; port: number } | null {
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1 || authority[close + 1] !== ':') return null;
    host = authority.slice(0, close + 1);
    portText = authority.slice(close + 2);
  } else {
    const colon = authority.lastIndexOf(':');
    // A bare IPv6 literal without brackets is ambiguous about where the port starts.
    if (colon === -1 || authority.indexOf(':') !== colon) return null;
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
  }
  const port = parsePort(portText);
  if (port === null || host === '') return null;
  return { host, port };
}

// ---- address classes -----------------------------------------------------

/** [network, prefix length] of IPv4 ranges no proxied request may reach by default. */
const FORBIDDEN_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

const FORBIDDEN_V4_RANGES = FORBIDDEN_V4.map(([network, bits]) => {
  const base = parseIpv4(network) as number;
  const size = 2 ** (32 - bits);
  return { start: base, end: base + size - 1 };
});

export function isForbiddenIpv4(address: number): boolean {
  return FORBIDDEN_V4_RANGES.some((range) => address >= range.start && address <= range.end);
}

function hasPrefix(bytes: Uint8Array, prefix: Uint8Array, bits: number): boolean {
  for (let bit = 0; bit < bits; bit += 8) {
    const remaining = bits - bit;
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff;
    if ((bytes[bit / 8] & mask) !== (prefix[bit / 8] & mask)) return false;
  }
  return true;
}

/** IPv6 ranges refused outright: [prefix, length]. */
const FORBIDDEN_V6: ReadonlyArray<readonly [string, number]> = [
  ['::', 96], // unspecified, loopback, deprecated IPv4-compatible
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, …)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
];

const FORBIDDEN_V6_RANGES = FORBIDDEN_V6.map(([prefix, bits]) => ({ prefix: parseIpv6(prefix), bits }));
const NAT64_WELL_KNOWN = parseIpv6('64:ff9b::');
const SIX_TO_FOUR = parseIpv6('2002::');

export function isForbiddenIpv6(bytes: Uint8Array): boolean {
  if (isIpv4Mapped(bytes)) return isForbiddenIpv4(embeddedIpv4(bytes, 12));
  // Translation prefixes carry an IPv4 address: judge by what they lead to.
  if (hasPrefix(bytes, NAT64_WELL_KNOWN, 96)) return isForbiddenIpv4(embeddedIpv4(bytes, 12));
  if (hasPrefix(bytes, SIX_TO_FOUR, 16)) return isForbiddenIpv4(embeddedIpv4(bytes, 2));
  return FORBIDDEN_V6_RANGES.some((range) => hasPrefix(bytes, range.prefix, range.bits));
}

/** True for loopback, private, link-local, CGNAT, multicast, unspecified and other reserved addresses. */
export function isForbiddenAddress(address: CanonicalHost): boolean {
  if (address.kind === 'ipv4') return isForbiddenIpv4(parseIpv4(address.host) as number);
  if (address.kind === 'ipv6') return isForbiddenIpv6(parseIpv6(address.host));
  throw new Error('not an IP address');
}

// ---- rules and matching --------------------------------------------------

export interface EgressEntryObject {
  host: string;
  ports?: number[];
  allowPrivate?: boolean;
}
export type EgressEntry = string | EgressEntryObject;

/** Compiles one allowlist entry; throws with the reason when the host is not valid. */
export function compileRule(entry: EgressEntry): EgressRule {
  const spec = typeof entry === 'string' ? { host: entry } : entry;
  const ports = spec.ports && spec.ports.length > 0 ? [...spec.ports] : null;
  const allowPrivate = spec.allowPrivate === true;
  const raw = spec.host.trim();
  const canonical = (text: string): CanonicalHost => {
    try {
      return canonicalHost(text);
    } catch (err) {
      throw new Error(`invalid host "${raw}": ${(err as Error).message}`);
    }
  };
  if (raw.startsWith('*.')) {
    const suffix = canonical(raw.slice(2));
    if (suffix.kind !== 'domain') throw new Error(`wildcard needs a domain, got "${raw}"`);
    if (!suffix.host.includes('.')) throw new Error(`wildcard "${raw}" would cover a whole top-level domain`);
    return { match: 'suffix', kind: 'domain', host: suffix.host, ports, allowPrivate };
  }
  if (raw.includes('*')) throw new Error(`"*" is only allowed as a leading "*." in "${raw}"`);
  const host = canonical(raw);
  return { match: 'exact', kind: host.kind, host: host.host, ports, allowPrivate };
}

export function ruleMatchesHost(rule: EgressRule, host: CanonicalHost): boolean {
  if (rule.match === 'exact') return rule.kind === host.kind && rule.host === host.host;
  // Strict subdomains only: `*.example.com` is neither `example.com` nor `evil-example.com`.
  return host.kind === 'domain' && host.host.endsWith(`.${rule.host}`);
}

function ruleAllowsPort(rule: EgressRule, port: number): boolean {
  return (rule.ports ?? DEFAULT_EGRESS_PORTS).includes(port);
}

export type PolicyCheck =
  | { ok: true; host: CanonicalHost; port: number; target: string; hostAllowsPrivate: boolean }
  | { ok: false; reason: EgressRefusalReason; target: string | null };

/** The part of the decision that needs no network: syntax, allowlist, port. */
export function checkTarget(rules: EgressRules, rawHost: string, port: number): PolicyCheck {
  let host: CanonicalHost;
  try {
    host = canonicalHost(rawHost);
  } catch {
    return { ok: false, reason: 'bad_request', target: null };
  }
  const target = formatTarget(host, port);
  const matching = rules.filter((rule) => ruleMatchesHost(rule, host));
  if (matching.length === 0) return { ok: false, reason: 'host_not_allowlisted', target };
  const forPort = matching.filter((rule) => ruleAllowsPort(rule, port));
  if (forPort.length === 0) return { ok: false, reason: 'port_not_allowed', target };
  return { ok: true, host, port, target, hostAllowsPrivate: forPort.some((rule) => rule.allowPrivate) };
}

/**
 * An internal address the owner listed with allowPrivate, for this port: the
 * entry's port list binds the address too, so a name that resolves to it can
 * not reach ports the owner never opened on it.
 */
function addressAllowedPrivate(rules: EgressRules, address: CanonicalHost, port: number): boolean {
  return rules.some(
    (rule) =>
      rule.match === 'exact' &&
      rule.allowPrivate &&
      rule.kind === address.kind &&
      rule.host === address.host &&
      ruleAllowsPort(rule, port),
  );
}

/**
 * The full decision: policy, then (for names) resolution on the host, then the
 * address check on EVERY resolved address, so a name with one public and one
 * internal record cannot be used to reach the internal one.
 */
export async function decideEgress(
  rules: EgressRules,
  rawHost: string,
  port: number,
  resolve: Resolver,
): Promise<EgressDecision> {
  const check = checkTarget(rules, rawHost, port);
  if (!check.ok) return check;
  const { host, target } = check;
  let rawAddresses: string[];
  if (host.kind === 'domain') {
    try {
      rawAddresses = await resolve(host.host);
    } catch {
      return { ok: false, reason: 'resolve_failed', target };
    }
  } else {
    rawAddresses = [host.host];
  }
  const addresses: CanonicalHost[] = [];
  for (const raw of rawAddresses) {
    // Only IP literals: a resolver answering with a name must not start a second lookup.
    if (!isIPv4(raw) && !isIPv6(raw)) return { ok: false, reason: 'resolve_failed', target };
    try {
      addresses.push(canonicalHost(raw));
    } catch {
      return { ok: false, reason: 'resolve_failed', target };
    }
  }
  if (addresses.length === 0) return { ok: false, reason: 'resolve_failed', target };
  for (const address of addresses) {
    if (
      isForbiddenAddress(address) &&
      !check.hostAllowsPrivate &&
      !addressAllowedPrivate(rules, address, port)
    ) {
      return { ok: false, reason: 'private_address', target };
    }
  }
  return { ok: true, host, port, target, addresses: addresses.map((a) => a.host) };
}
