// Regression for a weakness the adversarial suite found: an internal address the
// owner listed with allowPrivate for one port must not open other ports on it to
// a listed name that happens to resolve there (e.g. `localhost`, or a wildcard
// domain whose DNS an attacker controls).

import { describe, expect, it } from 'vitest';
import { compileRule, decideEgress, type EgressEntry } from '../../../src/broker/egress-policy.js';

const rules = (...entries: EgressEntry[]) => entries.map(compileRule);
const toLoopback = async (): Promise<string[]> => ['127.0.0.1'];

describe('egress: a listed internal address is bound to its ports', () => {
  const list = rules('localhost', '*.example.com', { host: '127.0.0.1', ports: [8080], allowPrivate: true });

  it('refuses a listed name resolving to the address on a port the address entry does not list', async () => {
    expect(await decideEgress(list, 'localhost', 80, toLoopback)).toEqual({
      ok: false,
      reason: 'private_address',
      target: 'localhost:80',
    });
    expect(await decideEgress(list, 'rebind.example.com', 443, toLoopback)).toMatchObject({
      ok: false,
      reason: 'private_address',
    });
  });

  it('still allows the address itself, and a name resolving to it, on the listed port', async () => {
    expect(await decideEgress(list, '127.0.0.1', 8080, toLoopback)).toMatchObject({ ok: true });
    const named = rules(
      { host: 'nas.test', ports: [8080] },
      { host: '127.0.0.1', ports: [8080], allowPrivate: true },
    );
    expect(await decideEgress(named, 'nas.test', 8080, toLoopback)).toMatchObject({
      ok: true,
      addresses: ['127.0.0.1'],
    });
  });

  it('does not let an IPv6 entry vouch for an IPv4 address or the reverse', async () => {
    const v6 = rules('a.test', { host: '::1', allowPrivate: true });
    expect(await decideEgress(v6, 'a.test', 443, toLoopback)).toMatchObject({ reason: 'private_address' });
  });
});
