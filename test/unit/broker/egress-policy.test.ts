import { describe, expect, it } from 'vitest';
import {
  canonicalHost,
  checkTarget,
  compileRule,
  decideEgress,
  formatTarget,
  isForbiddenAddress,
  parseAuthority,
  type EgressEntry,
} from '../../../src/broker/egress-policy.js';

const rules = (...entries: EgressEntry[]) => entries.map(compileRule);
const noResolve = async (): Promise<string[]> => {
  throw new Error('resolver must not be called');
};

describe('canonicalHost', () => {
  it.each([
    ['Example.COM.', 'domain', 'example.com'],
    ['api.example.com', 'domain', 'api.example.com'],
    ['127.0.0.1', 'ipv4', '127.0.0.1'],
    ['127.1', 'ipv4', '127.0.0.1'],
    ['127.0.1', 'ipv4', '127.0.0.1'],
    ['2130706433', 'ipv4', '127.0.0.1'],
    ['0177.0.0.1', 'ipv4', '127.0.0.1'],
    ['0x7f.0.0.1', 'ipv4', '127.0.0.1'],
    ['0X7F000001', 'ipv4', '127.0.0.1'],
    ['0x7f.1', 'ipv4', '127.0.0.1'],
    ['0', 'ipv4', '0.0.0.0'],
    ['169.254.169.254.', 'ipv4', '169.254.169.254'],
    ['0xa9fea9fe', 'ipv4', '169.254.169.254'],
    ['[::1]', 'ipv6', '::1'],
    ['0:0:0:0:0:0:0:1', 'ipv6', '::1'],
    ['[::ffff:127.0.0.1]', 'ipv4', '127.0.0.1'],
    ['[::FFFF:7f00:1]', 'ipv4', '127.0.0.1'],
    ['[0:0:0:0:0:ffff:a9fe:a9fe]', 'ipv4', '169.254.169.254'],
    ['2001:DB8:0:0:1:0:0:1', 'ipv6', '2001:db8::1:0:0:1'],
    ['[2606:4700:0000:0000:0000:0000:0000:1111]', 'ipv6', '2606:4700::1111'],
    ['[64:ff9b::10.0.0.1]', 'ipv6', '64:ff9b::a00:1'],
    ['bücher.example', 'domain', 'xn--bcher-kva.example'],
  ])('%s → %s %s', (raw, kind, host) => {
    expect(canonicalHost(raw)).toEqual({ kind, host });
  });

  it.each([
    '256.0.0.1',
    '1.2.3.4.5',
    '08.0.0.1',
    '4294967296',
    '1.2.3.0x100',
    'example.123',
    '[fe80::1%eth0]',
    '[::1',
    'exa mple.com',
    'a..b',
    '-bad.example.com',
    '',
    '.',
    'host/with/slash',
    'user@host',
  ])('rejects %j', (raw) => {
    expect(() => canonicalHost(raw)).toThrow();
  });

  it('formats targets with brackets for IPv6', () => {
    expect(formatTarget(canonicalHost('[::1]'), 443)).toBe('[::1]:443');
    expect(formatTarget(canonicalHost('EXAMPLE.com.'), 80)).toBe('example.com:80');
  });
});

describe('parseAuthority', () => {
  it('splits host and port, IPv6 bracketed', () => {
    expect(parseAuthority('example.com:443')).toEqual({ host: 'example.com', port: 443 });
    expect(parseAuthority('[::1]:8443')).toEqual({ host: '[::1]', port: 8443 });
  });
  it.each([
    'example.com',
    'example.com:',
    'example.com:0',
    'example.com:65536',
    'example.com:+80',
    '::1:443',
    ':443',
    '[::1]',
  ])('rejects %j', (raw) => {
    expect(parseAuthority(raw)).toBeNull();
  });
});

describe('address classes', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '224.0.0.1',
    '239.255.255.250',
    '240.0.0.1',
    '255.255.255.255',
    '192.0.2.1',
    '198.18.0.1',
    '::',
    '::1',
    '::127.0.0.1',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'febf::1',
    'ff02::1',
    '64:ff9b::a00:1',
    '64:ff9b:1::1',
    '2002:7f00:1::',
    '2002:a9fe:a9fe::1',
    '2001:db8::1',
    '2001::1',
  ])('%s is forbidden', (address) => {
    expect(isForbiddenAddress(canonicalHost(address))).toBe(true);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '172.15.255.255',
    '100.128.0.1',
    '100.63.255.255',
    '93.184.216.34',
    '2606:4700::1111',
    '2a00:1450::1',
    '64:ff9b::808:808',
    '2002:808:808::',
  ])('%s is public', (address) => {
    expect(isForbiddenAddress(canonicalHost(address))).toBe(false);
  });
});

describe('rules and matching', () => {
  const list = rules(
    '*.example.com',
    'exact.test',
    { host: 'ports.test', ports: [8443] },
    '10.0.0.5',
    '[::1]',
  );

  it('wildcards match strict subdomains only', () => {
    expect(checkTarget(list, 'a.example.com', 443).ok).toBe(true);
    expect(checkTarget(list, 'deep.a.EXAMPLE.com.', 443).ok).toBe(true);
    expect(checkTarget(list, 'example.com', 443)).toMatchObject({
      ok: false,
      reason: 'host_not_allowlisted',
    });
    expect(checkTarget(list, 'evil-example.com', 443)).toMatchObject({
      ok: false,
      reason: 'host_not_allowlisted',
    });
    expect(checkTarget(list, 'a.example.com.evil.test', 443)).toMatchObject({
      ok: false,
      reason: 'host_not_allowlisted',
    });
  });

  it('exact entries match only themselves, in any spelling', () => {
    expect(checkTarget(list, 'EXACT.test.', 80).ok).toBe(true);
    expect(checkTarget(list, 'sub.exact.test', 80)).toMatchObject({ reason: 'host_not_allowlisted' });
  });

  it('uses ports 80/443 unless the entry lists ports', () => {
    expect(checkTarget(list, 'exact.test', 22)).toEqual({
      ok: false,
      reason: 'port_not_allowed',
      target: 'exact.test:22',
    });
    expect(checkTarget(list, 'ports.test', 8443).ok).toBe(true);
    expect(checkTarget(list, 'ports.test', 443)).toMatchObject({ reason: 'port_not_allowed' });
  });

  it('matches IP literals only when listed, in canonical form', () => {
    expect(checkTarget(list, '10.0.0.5', 443).ok).toBe(true);
    expect(checkTarget(list, '012.0.0.5', 443).ok).toBe(true);
    expect(checkTarget(list, '10.0.0.6', 443)).toMatchObject({
      reason: 'host_not_allowlisted',
      target: '10.0.0.6:443',
    });
    expect(checkTarget(list, '[0::1]', 443).ok).toBe(true);
    expect(checkTarget(list, '127.0.0.1', 443)).toMatchObject({ reason: 'host_not_allowlisted' });
  });

  it('refuses unparseable hosts as bad requests', () => {
    expect(checkTarget(list, 'a b', 443)).toEqual({ ok: false, reason: 'bad_request', target: null });
  });

  it('rejects invalid entries with a reason', () => {
    expect(() => compileRule('*.com')).toThrow(/top-level/);
    expect(() => compileRule('a.*.example.com')).toThrow(/\*/);
    expect(() => compileRule('*.10.0.0.1')).toThrow(/domain/);
    expect(() => compileRule('exa mple.com')).toThrow(/invalid host/);
  });
});

describe('decideEgress', () => {
  it('never resolves when the allowlist already refused', async () => {
    const calls: string[] = [];
    const resolve = async (host: string) => (calls.push(host), ['8.8.8.8']);
    const list = rules('allowed.test');
    expect(await decideEgress(list, 'other.test', 443, resolve)).toMatchObject({
      reason: 'host_not_allowlisted',
    });
    expect(await decideEgress(list, 'allowed.test', 22, resolve)).toMatchObject({
      reason: 'port_not_allowed',
    });
    expect(calls).toEqual([]);
  });

  it('refuses when ANY resolved address is internal', async () => {
    const list = rules('*.example.com');
    const decision = await decideEgress(list, 'mixed.example.com', 443, async () => [
      '93.184.216.34',
      '10.0.0.1',
    ]);
    expect(decision).toEqual({ ok: false, reason: 'private_address', target: 'mixed.example.com:443' });
  });

  it('treats mapped and numeric answers from the resolver like the addresses they are', async () => {
    const list = rules('a.test');
    expect(await decideEgress(list, 'a.test', 443, async () => ['::ffff:169.254.169.254'])).toMatchObject({
      reason: 'private_address',
    });
  });

  it('refuses resolver failures, empty answers and non-IP answers', async () => {
    const list = rules('a.test');
    const failing = async (): Promise<string[]> => {
      throw new Error('ENOTFOUND');
    };
    expect(await decideEgress(list, 'a.test', 443, failing)).toMatchObject({ reason: 'resolve_failed' });
    expect(await decideEgress(list, 'a.test', 443, async () => [])).toMatchObject({
      reason: 'resolve_failed',
    });
    expect(await decideEgress(list, 'a.test', 443, async () => ['internal.corp'])).toMatchObject({
      reason: 'resolve_failed',
    });
  });

  it('allows internal addresses only when the host or the address is listed with allowPrivate', async () => {
    const hostListed = rules({ host: 'nas.test', allowPrivate: true });
    expect(await decideEgress(hostListed, 'nas.test', 443, async () => ['192.168.1.10'])).toEqual({
      ok: true,
      host: { kind: 'domain', host: 'nas.test' },
      port: 443,
      target: 'nas.test:443',
      addresses: ['192.168.1.10'],
    });
    const addressListed = rules('nas.test', { host: '192.168.1.10', allowPrivate: true });
    expect((await decideEgress(addressListed, 'nas.test', 443, async () => ['192.168.1.10'])).ok).toBe(true);
    expect(await decideEgress(addressListed, 'nas.test', 443, async () => ['192.168.1.11'])).toMatchObject({
      reason: 'private_address',
    });
    const literalNoPrivate = rules('169.254.169.254');
    expect(await decideEgress(literalNoPrivate, '169.254.169.254', 80, noResolve)).toMatchObject({
      reason: 'private_address',
    });
  });

  it('does not resolve IP literals and returns them as the dial addresses', async () => {
    const list = rules({ host: '127.0.0.1', ports: [8080], allowPrivate: true });
    expect(await decideEgress(list, '2130706433', 8080, noResolve)).toMatchObject({
      ok: true,
      addresses: ['127.0.0.1'],
      target: '127.0.0.1:8080',
    });
  });
});
