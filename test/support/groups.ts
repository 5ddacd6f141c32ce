// One way to build a Group in tests: a non-main group with the default trigger,
// overridable field by field.

import type { Group } from '../../src/core/types.js';

export function makeGroup(folder: string, overrides: Partial<Group> = {}): Group {
  return {
    jid: `${folder}@g.us`,
    name: folder,
    folder,
    trigger: '@Andy',
    requiresTrigger: true,
    isMain: false,
    containerConfig: {},
    dailyTokenBudget: null,
    allowedSenders: null,
    addedAt: new Date(0).toISOString(),
    ...overrides,
  };
}
