// What each board profile runs (pure, shared by bench/board.ts and the host
// child it starts): slots and chats per engine and board, the figure names,
// and the verdict the profile exists for.

export type BoardEngine = 'claude-code' | 'lite';

/** How many runs the host may keep live (`maxConcurrentRuns`) and how many chats write at once. */
export interface BoardPlan {
  slots: number;
  chats: number;
}

/**
 * Claude Code on 1 GB: the shipped two slots and a third chat that must queue.
 * Lite: issue 14's targets, every chat in a slot of its own (6 in 1 GiB, 2 in
 * 512 MiB). Claude Code on 512 MB: the documented tuning, one slot.
 */
export const PLANS: Record<BoardEngine, Record<string, BoardPlan>> = {
  'claude-code': { '1gb': { slots: 2, chats: 3 }, '512mb': { slots: 1, chats: 2 } },
  lite: { '1gb': { slots: 6, chats: 6 }, '512mb': { slots: 2, chats: 2 } },
};

/** The figure-name suffix: claude-code's names stay as they were before lite had a profile. */
export function boardSuffix(boardName: string, engine: BoardEngine): string {
  return `_board_${boardName}${engine === 'lite' ? '_lite' : ''}`;
}

/** The chats' group folders: board-a, board-b, … */
export function boardFolders(chats: number): string[] {
  return Array.from({ length: chats }, (_, i) => `board-${String.fromCharCode(97 + i)}`);
}

/** One round's evidence: the queue's peak of active runs, the sampler's peak of live run trees. */
export interface BoardCheck {
  maxActive: number;
  maxLiveSandboxes: number;
  queuedWaited: boolean;
  oomKills: number;
}

/**
 * The verdict the profile exists for: every chat's run live at once when the
 * plan gives each its own slot (else the extra chats queued), and no OOM kill.
 */
export function boardVerdict(plan: BoardPlan, rounds: BoardCheck[]): { ok: boolean; text: string } {
  const expected = Math.min(plan.slots, plan.chats);
  const concurrent = rounds.filter((r) => r.maxActive >= expected && r.maxLiveSandboxes >= expected).length;
  const queued = plan.chats > plan.slots ? rounds.filter((r) => r.queuedWaited).length : rounds.length;
  const ooms = rounds.reduce((sum, r) => sum + r.oomKills, 0);
  const ok = concurrent === rounds.length && queued === rounds.length && ooms === 0;
  const parts = [
    `${expected} run${expected === 1 ? '' : 's'} live at once in ${concurrent}/${rounds.length} rounds`,
    ...(plan.chats > plan.slots ? [`extra chats waited for a slot in ${queued}/${rounds.length}`] : []),
    `${ooms} OOM kills`,
  ];
  return { ok, text: `${ok ? 'PASS' : 'FAIL'}: ${parts.join(', ')}` };
}
