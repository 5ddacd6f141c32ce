// The control protocol's parsing: the version check names the fix, malformed
// requests get a stable code, and the client tells replies from console events.
import { describe, expect, it } from 'vitest';
import { CONTROL_VERSION, parseControlRequest, parseServerLine } from '../../../src/core/control.js';

describe('control protocol', () => {
  it('accepts a well-formed command request', () => {
    const parsed = parseControlRequest(
      JSON.stringify({ v: CONTROL_VERSION, id: 3, op: 'command', args: { argv: ['groups', 'list'] } }),
    );
    expect(parsed).toEqual({
      ok: true,
      request: { v: CONTROL_VERSION, id: 3, op: 'command', args: { argv: ['groups', 'list'] } },
    });
  });

  it('refuses another version with E_CONTROL_VERSION and the fix, keeping the id', () => {
    const parsed = parseControlRequest(JSON.stringify({ v: 99, id: 4, op: 'command', args: { argv: [] } }));
    expect(parsed).toMatchObject({ ok: false, id: 4, code: 'E_CONTROL_VERSION' });
    expect(parsed.ok ? '' : parsed.message).toMatch(/restart the host/);
  });

  it('refuses non-JSON, unknown ops and bad arguments with E_CONTROL_REQUEST', () => {
    expect(parseControlRequest('{nope')).toMatchObject({ ok: false, code: 'E_CONTROL_REQUEST' });
    expect(parseControlRequest(JSON.stringify({ v: CONTROL_VERSION, id: 1, op: 'rm' }))).toMatchObject({
      ok: false,
      id: 1,
      code: 'E_CONTROL_REQUEST',
    });
    expect(
      parseControlRequest(JSON.stringify({ v: CONTROL_VERSION, id: 2, op: 'command', args: { argv: 'ls' } })),
    ).toMatchObject({ ok: false, code: 'E_CONTROL_REQUEST' });
  });

  it('tells a reply from a console event, and ignores garbage', () => {
    expect(parseServerLine('{"id":1,"ok":true,"result":{"exitCode":0,"lines":[]}}')).toMatchObject({
      kind: 'reply',
    });
    expect(parseServerLine('{"event":"out","data":"hi\\n"}')).toEqual({
      kind: 'event',
      event: { event: 'out', data: 'hi\n' },
    });
    expect(parseServerLine('{"event":"done","exitCode":0}')).toMatchObject({ kind: 'event' });
    expect(parseServerLine('not json')).toBeNull();
    expect(parseServerLine('{"id":"x"}')).toBeNull();
  });
});
