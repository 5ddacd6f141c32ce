// The board profiles' plans and verdict: lite gives every chat its own slot
// (issue 14's 6 in 1 GiB and 2 in 512 MiB), Claude Code keeps a chat queued,
// and a round passes only when every run was live at once with no OOM kill.
import { describe, expect, it } from 'vitest';
import {
  PLANS,
  boardFolders,
  boardSuffix,
  boardVerdict,
  type BoardCheck,
} from '../../../bench/board-plan.js';

const live = (runs: number, extra: Partial<BoardCheck> = {}): BoardCheck => ({
  maxActive: runs,
  maxLiveSandboxes: runs,
  queuedWaited: false,
  oomKills: 0,
  ...extra,
});

describe('board plans', () => {
  it("runs issue 14's lite targets and keeps Claude Code's 1 GB profile as it was", () => {
    expect(PLANS.lite['1gb']).toEqual({ slots: 6, chats: 6 });
    expect(PLANS.lite['512mb']).toEqual({ slots: 2, chats: 2 });
    expect(PLANS['claude-code']['1gb']).toEqual({ slots: 2, chats: 3 });
    expect(boardSuffix('1gb', 'claude-code')).toBe('_board_1gb');
    expect(boardSuffix('512mb', 'lite')).toBe('_board_512mb_lite');
    expect(boardFolders(6)).toEqual(['board-a', 'board-b', 'board-c', 'board-d', 'board-e', 'board-f']);
  });

  it('passes when every round had all runs live at once and no OOM kill', () => {
    const verdict = boardVerdict({ slots: 6, chats: 6 }, [live(6), live(6), live(6)]);
    expect(verdict).toEqual({ ok: true, text: 'PASS: 6 runs live at once in 3/3 rounds, 0 OOM kills' });
  });

  it('fails when a round peaked below the plan, on the queue or in the sandboxes seen', () => {
    const plan = { slots: 6, chats: 6 };
    expect(boardVerdict(plan, [live(6), live(5)]).text).toBe(
      'FAIL: 6 runs live at once in 1/2 rounds, 0 OOM kills',
    );
    expect(boardVerdict(plan, [live(6, { maxLiveSandboxes: 4 })]).ok).toBe(false);
  });

  it('fails on any OOM kill', () => {
    const verdict = boardVerdict({ slots: 2, chats: 2 }, [live(2), live(2, { oomKills: 1 })]);
    expect(verdict).toEqual({ ok: false, text: 'FAIL: 2 runs live at once in 2/2 rounds, 1 OOM kills' });
  });

  it('asks a plan with more chats than slots for the extra chat to have waited', () => {
    const plan = { slots: 2, chats: 3 };
    expect(boardVerdict(plan, [live(2, { queuedWaited: true })]).text).toBe(
      'PASS: 2 runs live at once in 1/1 rounds, extra chats waited for a slot in 1/1, 0 OOM kills',
    );
    expect(boardVerdict(plan, [live(2)]).ok).toBe(false);
  });
});
