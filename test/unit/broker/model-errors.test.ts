import { describe, expect, it } from 'vitest';
import {
  classifyModelError,
  modelTroubleNotice,
  parseErrorBody,
  stopsRunAtOnce,
  type ModelFailure,
} from '../../../src/broker/model-errors.js';

const context = { upstreamHost: 'api.anthropic.com', modelName: 'claude-sonnet-4-5' };

function classOf(failure: ModelFailure): [string, boolean] {
  const error = classifyModelError(failure, context);
  return [error.class, error.retryable];
}

describe('classifyModelError', () => {
  it('does not retry what asking again cannot fix', () => {
    expect(classOf({ status: 401, type: 'authentication_error' })).toEqual(['authentication', false]);
    expect(classOf({ status: 403, type: 'permission_error' })).toEqual(['permission', false]);
    expect(classOf({ status: 402 })).toEqual(['billing', false]);
    expect(
      classOf({ status: 400, type: 'invalid_request_error', message: 'Your credit balance is too low' }),
    ).toEqual(['billing', false]);
    expect(classOf({ status: 403, type: 'billing_error', message: 'no plan' })).toEqual(['billing', false]);
    expect(classOf({ status: 400, type: 'invalid_request_error', message: 'bad' })).toEqual([
      'invalid_request',
      false,
    ]);
    expect(classOf({ status: 404, type: 'not_found_error', message: 'model: x' })).toEqual([
      'not_found',
      false,
    ]);
    expect(classOf({ status: 413 })).toEqual(['invalid_request', false]);
  });

  it('stops a run at once only for setup problems, not for a request the agent may get past', () => {
    const stops = (failure: ModelFailure) => stopsRunAtOnce(classifyModelError(failure, context));
    expect([401, 402, 403, 404].map((status) => stops({ status }))).toEqual([true, true, true, true]);
    expect([400, 429, 500, 529].map((status) => stops({ status }))).toEqual([false, false, false, false]);
    expect(stops({ networkCode: 'ECONNREFUSED' })).toBe(false);
  });

  it('retries what passes with time', () => {
    expect(classOf({ status: 429, type: 'rate_limit_error' })).toEqual(['rate_limited', true]);
    expect(classOf({ status: 529, type: 'overloaded_error' })).toEqual(['overloaded', true]);
    expect(classOf({ status: 500, type: 'api_error' })).toEqual(['server_error', true]);
    expect(classOf({ status: 503 })).toEqual(['server_error', true]);
    expect(classOf({ networkCode: 'ECONNREFUSED' })).toEqual(['unreachable', true]);
    expect(classOf({ networkCode: 'ENOTFOUND' })).toEqual(['unreachable', true]);
    expect(classOf({ networkCode: 'ETIMEDOUT' })).toEqual(['unreachable', true]);
    expect(classOf({ noAnswerWithinMs: 60_000 })).toEqual(['unreachable', true]);
  });

  it('says how long the broker waited for an upstream that never answered', () => {
    expect(classifyModelError({ noAnswerWithinMs: 60_000 }, context).message).toBe(
      'api.anthropic.com is unreachable (no answer within 60 s)',
    );
    expect(classifyModelError({ noAnswerWithinMs: 2_500 }, context).message).toBe(
      'api.anthropic.com is unreachable (no answer within 2.5 s)',
    );
  });

  it('words the keeps-trying notice around the cause', () => {
    const error = classifyModelError({ networkCode: 'ECONNREFUSED' }, context);
    expect(modelTroubleNotice(error)).toBe(
      "The model isn't answering right now: api.anthropic.com is unreachable (connection refused). " +
        "I'll keep trying and answer when it's back.",
    );
  });

  it('says what happened at the configured upstream and what to do', () => {
    const say = (failure: ModelFailure) => classifyModelError(failure, context).message;
    expect(say({ status: 401 })).toBe(
      'the API key was refused by api.anthropic.com (401); check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) and run nanoclaw doctor',
    );
    expect(say({ status: 404, message: 'model: claude-nope' })).toBe(
      'the model name "claude-nope" is not known to api.anthropic.com (404); fix NANOCLAW_MODEL',
    );
    // Without a name in the answer, the configured one.
    expect(say({ status: 404, message: 'Not Found' })).toContain('"claude-sonnet-4-5"');
    expect(say({ networkCode: 'ECONNREFUSED' })).toBe(
      'api.anthropic.com is unreachable (connection refused)',
    );
    expect(say({ networkCode: 'EAI_AGAIN' })).toBe(
      'api.anthropic.com is unreachable (its name does not resolve (DNS))',
    );
    expect(say({ status: 400, message: 'x'.repeat(500) }).length).toBeLessThan(300);
  });

  it('reads the API error shape and shrugs at anything else', () => {
    expect(
      parseErrorBody('{"type":"error","error":{"type":"not_found_error","message":"model: x"}}'),
    ).toEqual({
      type: 'not_found_error',
      message: 'model: x',
    });
    expect(parseErrorBody('<html>bad gateway</html>')).toEqual({});
    expect(parseErrorBody('null')).toEqual({});
  });
});
