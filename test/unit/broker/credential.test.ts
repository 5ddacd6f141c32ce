import { describe, expect, it } from 'vitest';
import { keysEqual, presentedKey, REDACTED, scrubSecrets } from '../../../src/broker/credential.js';

describe('credential helpers', () => {
  it('scrubs every occurrence of the secret, raw and URL-encoded', () => {
    const secret = 'sk-ant-api03-a+b/c=';
    const text = `failed: ${secret} and again ${secret}; url ?key=${encodeURIComponent(secret)}`;
    const scrubbed = scrubSecrets(text, [secret]);
    expect(scrubbed).not.toContain(secret);
    expect(scrubbed).not.toContain(encodeURIComponent(secret));
    expect(scrubbed.split(REDACTED)).toHaveLength(4);
  });

  it('leaves text alone when there is nothing to scrub', () => {
    expect(scrubSecrets('connect ECONNREFUSED 127.0.0.1:1', ['sk-secret'])).toBe(
      'connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(scrubSecrets('a b c', ['', 'a'])).toBe('a b c');
  });

  it('reads the presented key from x-api-key or a bearer authorization', () => {
    expect(presentedKey({ 'x-api-key': 'k1' })).toBe('k1');
    expect(presentedKey({ authorization: 'Bearer k2' })).toBe('k2');
    expect(presentedKey({ authorization: 'bearer   k3 ' })).toBe('k3');
    expect(presentedKey({ authorization: 'Basic Zm9v' })).toBeNull();
    expect(presentedKey({ 'x-api-key': '' })).toBeNull();
    expect(presentedKey({})).toBeNull();
  });

  it('compares keys exactly, whatever their lengths', () => {
    expect(keysEqual('ph-123', 'ph-123')).toBe(true);
    expect(keysEqual('ph-12', 'ph-123')).toBe(false);
    expect(keysEqual('ph-124', 'ph-123')).toBe(false);
    expect(keysEqual('', 'ph-123')).toBe(false);
  });
});
