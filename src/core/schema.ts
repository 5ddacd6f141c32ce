// The host's one way to zod: zod/mini, which bundles only the validators named
// here (the classic API costs the host ~5 MB of memory whatever it uses), with
// zod's English messages, which mini leaves out unless asked. Owners read these
// messages (a bad config key, a refused tool call): words, not "Invalid input".
// Import as `import * as z from '…/schema.js'`; named exports keep it tree-shaken.

import { en } from 'zod/locales';
import { config } from 'zod/mini';

config(en());

export {
  _default,
  array,
  boolean,
  discriminatedUnion,
  enum,
  gt,
  gte,
  int,
  literal,
  lt,
  lte,
  maxLength,
  minLength,
  nonnegative,
  nullable,
  number,
  object,
  optional,
  positive,
  record,
  refine,
  regex,
  strictObject,
  string,
  union,
  unknown,
} from 'zod/mini';
export type { infer, ZodMiniType } from 'zod/mini';
