// Sorts a failed model request into a class the owner can act on (issue 10):
// a refused key or an unknown model does not fix itself, so the run stops at
// once with a plain sentence; overload and network trouble pass with time, so
// they are retried. The sentences name the upstream the owner configured —
// never the broker's socket or the sandbox's loopback bridge. Pure: no I/O.

export type ModelErrorClass =
  | 'authentication'
  | 'permission'
  | 'billing'
  | 'invalid_request'
  | 'not_found'
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'unreachable';

export interface ModelError {
  class: ModelErrorClass;
  retryable: boolean;
  /** One sentence for the chat: what happened at which upstream, and what to do. */
  message: string;
}

/**
 * What the broker saw of one failed upstream request: an HTTP answer, a network
 * error, or no answer at all (no response headers) within the broker's wait.
 */
export type ModelFailure =
  | { status: number; type?: string; message?: string }
  | { networkCode: string | undefined; networkMessage?: string }
  | { noAnswerWithinMs: number };

export interface ModelErrorContext {
  /** The host of the configured upstream (e.g. api.anthropic.com). */
  upstreamHost: string;
  /** The model name the owner configured, when any (NANOCLAW_MODEL). */
  modelName?: string | null;
}

/**
 * Classes about the owner's setup (key, account, model name), which no later
 * request of the run can get past: the run is stopped at the first one. An
 * invalid request is not among them: it may be the agent's own doing (a probe
 * through the proxy, an image too large) and the agent may carry on after it.
 */
const SETUP_CLASSES: ReadonlySet<ModelErrorClass> = new Set([
  'authentication',
  'permission',
  'billing',
  'not_found',
]);

export function stopsRunAtOnce(error: ModelError): boolean {
  return SETUP_CLASSES.has(error.class);
}

/**
 * The chat's notice while a retryable failure lasts: the cause, and that the
 * assistant keeps trying. Sent once per outage; the real answer follows.
 */
export function modelTroubleNotice(error: Pick<ModelError, 'message'>): string {
  return `The model isn't answering right now: ${error.message}. I'll keep trying and answer when it's back.`;
}

/** Error types (the API's `error.type`) and words that mean the account cannot pay, whatever the status. */
const BILLING_TYPES: ReadonlySet<string> = new Set(['billing_error', 'credit_error', 'quota_error']);
const BILLING_WORDS = /credit balance|billing|quota|payment|insufficient.?credit/i;

/** Longest upstream error text quoted to the chat; the rest is noise. */
const MAX_QUOTED_CHARS = 160;

/** The error body's `{ error: { type, message } }`, or nothing when it is not one. */
export function parseErrorBody(body: string): { type?: string; message?: string } {
  try {
    const parsed = JSON.parse(body) as { error?: { type?: unknown; message?: unknown } } | null;
    const error = parsed?.error;
    return {
      ...(typeof error?.type === 'string' ? { type: error.type } : {}),
      ...(typeof error?.message === 'string' ? { message: error.message } : {}),
    };
  } catch {
    return {};
  }
}

function quote(text: string | undefined): string {
  const clean = (text ?? '').replace(/\s+/g, ' ').trim();
  return clean.length > MAX_QUOTED_CHARS ? `${clean.slice(0, MAX_QUOTED_CHARS)}…` : clean;
}

/** Words for a network error code; unknown codes are quoted as they are. */
function networkCause(code: string | undefined, message: string | undefined): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'its name does not resolve (DNS)';
    case 'ETIMEDOUT':
    case 'ESOCKETTIMEDOUT':
      return 'the connection timed out';
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to it (network down?)';
    default:
      return code ?? (quote(message) || 'network error');
  }
}

/** "60 s", "2.5 s": the owner reads this, and set the wait in milliseconds. */
function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function isBilling(type: string | undefined, message: string | undefined): boolean {
  return (type !== undefined && BILLING_TYPES.has(type)) || BILLING_WORDS.test(message ?? '');
}

/** The model name an upstream's 404 names (`model: x`), else the configured one. */
function unknownModel(message: string | undefined, configured: string | null | undefined): string | null {
  const named = /model:\s*([^\s"]+)/i.exec(message ?? '');
  return named?.[1] ?? configured ?? null;
}

/** The class, retryability and chat sentence of one failed model request. */
export function classifyModelError(failure: ModelFailure, context: ModelErrorContext): ModelError {
  const host = context.upstreamHost;
  if ('noAnswerWithinMs' in failure) {
    return {
      class: 'unreachable',
      retryable: true,
      message: `${host} is unreachable (no answer within ${formatSeconds(failure.noAnswerWithinMs)})`,
    };
  }
  if ('networkCode' in failure) {
    return {
      class: 'unreachable',
      retryable: true,
      message: `${host} is unreachable (${networkCause(failure.networkCode, failure.networkMessage)})`,
    };
  }
  const { status, type, message } = failure;
  const detail = quote(message);
  const said = detail === '' ? '' : `: ${detail}`;
  if (status === 402 || ((status === 400 || status === 403) && isBilling(type, message))) {
    return {
      class: 'billing',
      retryable: false,
      message: `${host} refused the request for billing reasons (${status}${said}); check the account's credit and plan`,
    };
  }
  if (status === 401) {
    return {
      class: 'authentication',
      retryable: false,
      message: `the API key was refused by ${host} (401); check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) and run nanoclaw doctor`,
    };
  }
  if (status === 403) {
    return {
      class: 'permission',
      retryable: false,
      message: `the API key is not allowed to do this at ${host} (403${said}); check the key's permissions and run nanoclaw doctor`,
    };
  }
  if (status === 404) {
    const model = unknownModel(message, context.modelName);
    return {
      class: 'not_found',
      retryable: false,
      message:
        model === null
          ? `${host} does not know what was asked for (404${said}); check ANTHROPIC_BASE_URL and NANOCLAW_MODEL`
          : `the model name "${model}" is not known to ${host} (404); fix NANOCLAW_MODEL`,
    };
  }
  if (status === 429) {
    return {
      class: 'rate_limited',
      retryable: true,
      message: `${host} is rate-limiting requests (429)`,
    };
  }
  if (status === 529 || type === 'overloaded_error') {
    return {
      class: 'overloaded',
      retryable: true,
      message: `${host} is overloaded (${status})`,
    };
  }
  if (status >= 500) {
    return {
      class: 'server_error',
      retryable: true,
      message: `${host} had an internal error (${status}${said})`,
    };
  }
  // 400 and any other 4xx: the request itself is wrong, and sending it again changes nothing.
  return {
    class: 'invalid_request',
    retryable: false,
    message: `${host} refused the request as invalid (${status}${said}); the owner can see details with nanoclaw doctor and the log`,
  };
}
