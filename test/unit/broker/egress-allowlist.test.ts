import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EGRESS_ALLOWLIST_FILE,
  jsonErrorOffset,
  loadEgressAllowlist,
  parseEgressAllowlist,
  rulesForGroup,
} from '../../../src/broker/egress-allowlist.js';
import { tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function policyDir(content?: string): Promise<string> {
  const tmp = await tempDir();
  cleanups.push(tmp.cleanup);
  if (content !== undefined) await writeFile(join(tmp.dir, EGRESS_ALLOWLIST_FILE), content);
  return tmp.dir;
}

describe('egress allowlist file', () => {
  it('is empty when the file is missing, and then no group gets rules', async () => {
    const file = loadEgressAllowlist(await policyDir());
    expect(file).toEqual({ default: [], groups: {} });
    expect(rulesForGroup(file, 'main')).toEqual([]);
  });

  it('gives a group the default list plus its own entries', async () => {
    const dir = await policyDir(
      JSON.stringify({
        default: ['api.github.com'],
        groups: {
          family: ['*.wikipedia.org', { host: 'nas.lan', ports: [8080], allowPrivate: true }],
          work: ['example.com'],
        },
      }),
    );
    const file = loadEgressAllowlist(dir);
    expect(rulesForGroup(file, 'family')).toEqual([
      { match: 'exact', kind: 'domain', host: 'api.github.com', ports: null, allowPrivate: false },
      { match: 'suffix', kind: 'domain', host: 'wikipedia.org', ports: null, allowPrivate: false },
      { match: 'exact', kind: 'domain', host: 'nas.lan', ports: [8080], allowPrivate: true },
    ]);
    expect(rulesForGroup(file, 'other').map((rule) => rule.host)).toEqual(['api.github.com']);
    expect(rulesForGroup(file, 'constructor').map((rule) => rule.host)).toEqual(['api.github.com']);
  });

  it('names the file and the line of a JSON syntax error', async () => {
    const dir = await policyDir('{\n  "default": [\n    "a.com",\n  ]\n}\n');
    const file = join(dir, EGRESS_ALLOWLIST_FILE);
    expect(() => loadEgressAllowlist(dir)).toThrow(file);
    expect(() => loadEgressAllowlist(dir)).toThrow(/invalid JSON at line 4/);
  });

  it('names the field of a schema error', () => {
    expect(() =>
      parseEgressAllowlist('{"groups":{"family":[{"host":"a.com","ports":[70000]}]}}', 'x.json'),
    ).toThrow(/^x\.json: groups\.family\[0\]/);
    expect(() => parseEgressAllowlist('{"default":"a.com"}', 'x.json')).toThrow(/^x\.json: default: /);
    expect(() => parseEgressAllowlist('{"defaults":[]}', 'x.json')).toThrow(/^x\.json: /);
    expect(() =>
      parseEgressAllowlist('{"default":[{"host":"a.com","allowprivate":true}]}', 'x.json'),
    ).toThrow(/x\.json/);
  });

  it('refuses entries whose host is invalid, naming where they are', () => {
    expect(() => parseEgressAllowlist('{"groups":{"work":["ok.com","*.com"]}}', 'x.json')).toThrow(
      /^x\.json: groups\.work\[1\]: .*top-level/,
    );
    expect(() => parseEgressAllowlist('{"default":["bad host"]}', 'x.json')).toThrow(
      /^x\.json: default\[0\]: invalid host/,
    );
  });
});

describe('jsonErrorOffset', () => {
  it.each([
    ['{"a":', 5],
    ['{"a" 1}', 5],
    ['[1,]', 3],
    ['{\n"a":tru}', 9],
    ['{"a":1} x', 8],
    ['{"a":"\u0001"}', 6],
    ['[01]', 2],
    ['{"a":[1,2,{"b":null}],"c":"\\u00e9"}', 35],
  ])('%j fails at %i', (text, offset) => {
    expect(jsonErrorOffset(text)).toBe(offset);
  });
});
