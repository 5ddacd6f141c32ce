import { describe, expect, it } from 'vitest';
import {
  RESERVED_FOLDERS,
  validateFolder,
  validateJid,
  validateTrigger,
} from '../../../src/core/validate.js';

describe('validateFolder', () => {
  it('accepts lower-case names of letters, digits and dashes', () => {
    for (const ok of ['family-chat', 'a', '0day', 'x'.repeat(64), 'team-2024']) {
      expect(validateFolder(ok), ok).toBeNull();
    }
  });

  it('rejects anything else with a message naming the field and an example', () => {
    expect(validateFolder('My Group')).toBe(
      'folder "My Group" is invalid: use 1–64 characters a-z, 0-9 and -, starting with a letter or digit, e.g. "family-chat"',
    );
    for (const bad of ['', '-lead', 'UPPER', '../etc', 'a/b', 'a.b', 'x'.repeat(65), 'tab\t', 'ünï']) {
      const message = validateFolder(bad);
      expect(message, bad).toMatch(/^folder .* e\.g\. "family-chat"$/);
    }
    expect(validateFolder(42)).toMatch(/^folder 42 is invalid/);
  });

  it('reserves global for everyone and main for the main group', () => {
    expect(RESERVED_FOLDERS).toEqual(expect.arrayContaining(['global', 'main']));
    expect(validateFolder('global')).toMatch(/^folder "global" is reserved.*e\.g\. "family-chat"/);
    expect(validateFolder('global', { isMain: true })).toMatch(/reserved/);
    expect(validateFolder('main')).toMatch(/^folder "main" is reserved for the main group/);
    expect(validateFolder('main', { isMain: true })).toBeNull();
  });
});

describe('validateJid', () => {
  it('accepts WhatsApp and local ids', () => {
    for (const ok of [
      '491701234567@s.whatsapp.net',
      '491701234567-1612345678@g.us',
      '120363012345678901@g.us',
      '123456789012345@lid',
      'local:main',
      'local:test_chat-2',
    ]) {
      expect(validateJid(ok), ok).toBeNull();
    }
  });

  it('rejects malformed ids with a message naming the field and examples', () => {
    for (const bad of [
      '',
      '+49 170@s.whatsapp.net',
      'abc@s.whatsapp.net',
      '123@example.com',
      'local:',
      'local:../x',
    ]) {
      const message = validateJid(bad);
      expect(message, bad).toMatch(/^jid .* is invalid: .*"491701234567@s\.whatsapp\.net".*"local:main"/);
    }
    expect(validateJid(undefined)).toMatch(/^jid undefined is invalid/);
  });
});

describe('validateTrigger', () => {
  it('accepts short words without whitespace', () => {
    expect(validateTrigger('@Andy')).toBeNull();
    expect(validateTrigger('c++')).toBeNull();
    expect(validateTrigger('x'.repeat(32))).toBeNull();
  });

  it('rejects empty, spaced or long triggers with an example', () => {
    for (const bad of ['', '@An dy', ' @Andy', 'x'.repeat(33), '@Andy\n']) {
      expect(validateTrigger(bad), JSON.stringify(bad)).toMatch(/^trigger .* is invalid: .*e\.g\. "@Andy"$/);
    }
  });
});
