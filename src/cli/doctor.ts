// `nanoclaw doctor`: one line per check, and a non-zero exit when something
// required is missing. It reports whether a credential is present and where it
// came from — never its value.

import fs from 'node:fs';
import os from 'node:os';
import type { Config } from '../config/config.js';
import { engineUsesModel, type Engine } from '../core/protocol.js';
import { legacyDataDir, loadCredential, loadOpenAiKey, loadTranscriberKey } from '../config/config.js';
import { checkTranscriber } from '../runs/transcribe.js';
import { loadEgressAllowlist } from '../broker/egress-allowlist.js';
import { classifyModelError, parseErrorBody, type ModelFailure } from '../broker/model-errors.js';
import { OAUTH_BETA } from '../broker/model-proxy.js';
import { createSecretScrubber } from '../broker/scrub.js';
import { readLinkedAccount } from '../channels/whatsapp/auth.js';
import { loadMountAllowlist, MOUNT_ALLOWLIST_FILE } from '../sandbox/mount-policy.js';
import { checkSandboxAccess, describeProblem } from '../sandbox/access.js';
import { AGENT_GID, AGENT_UID } from '../sandbox/mounts.js';
import { selectBackend } from '../sandbox/select.js';
import { openStore } from '../store/store.js';
import { freeDiskBytes } from '../host.js';
import type { Print } from './admin.js';
import { claudeCodeInstalled, describeBoard, describeEngines } from './engines.js';
import { findPackageRoot, runnerPaths } from './package-root.js';
import { backendSelection, repairNote } from './run-host.js';

interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
}

/** How long doctor waits for the model upstream before calling it unreachable. */
const DEFAULT_UPSTREAM_TIMEOUT_MS = 15_000;

/** The API version header the Models API wants. */
const ANTHROPIC_VERSION = '2023-06-01';

export interface UpstreamCheckOptions {
  upstreamBaseUrl: string;
  credential: { kind: 'api_key' | 'oauth'; value: string };
  modelName: string | null;
  timeoutMs?: number;
}

/**
 * Asks the configured upstream about the model (GET /v1/models/<name>, or the
 * first model when none is configured): it spends no tokens, and it proves the
 * upstream answers, the key is accepted and the model name is known. The
 * detail never carries the credential.
 */
export async function checkModelUpstream(
  options: UpstreamCheckOptions,
): Promise<{ ok: boolean; detail: string }> {
  const base = new URL(options.upstreamBaseUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  const target = options.modelName
    ? `/v1/models/${encodeURIComponent(options.modelName)}`
    : '/v1/models?limit=1';
  const url = `${base.origin}${prefix}${target}`;
  const headers: Record<string, string> = { 'anthropic-version': ANTHROPIC_VERSION };
  if (options.credential.kind === 'api_key') headers['x-api-key'] = options.credential.value;
  else {
    headers.authorization = `Bearer ${options.credential.value}`;
    headers['anthropic-beta'] = OAUTH_BETA;
  }
  const scrubber = createSecretScrubber([options.credential.value]);
  const context = { upstreamHost: base.host, modelName: options.modelName };
  let failure: ModelFailure;
  try {
    const res = await fetch(url, {
      headers,
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS),
    });
    const body = await res.text();
    if (res.ok) {
      const model = options.modelName ? `, model "${options.modelName}" known` : '';
      return { ok: true, detail: `${base.host} reachable, key accepted${model} (no tokens spent)` };
    }
    failure = { status: res.status, ...parseErrorBody(scrubber.scrubText(body)) };
  } catch (err) {
    // fetch wraps the socket error; its code is on the cause. A timeout is an abort.
    const cause = (err as { cause?: { code?: string } }).cause;
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    failure = {
      networkCode: timedOut ? 'ETIMEDOUT' : cause?.code,
      networkMessage: scrubber.scrubText(err instanceof Error ? err.message : String(err)),
    };
  }
  return { ok: false, detail: scrubber.scrubText(classifyModelError(failure, context).message) };
}

export async function doctorCommand(
  config: Config,
  print: Print,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<number> {
  // Which directories are in use comes first: most "where did my data go" questions end here.
  print(`data dir: ${config.homeDir}`);
  print(`config dir: ${config.configDir}`);
  const checks: Check[] = [];
  const add = (name: string, required: boolean, run: () => { ok: boolean; detail: string }): void => {
    try {
      checks.push({ name, required, ...run() });
    } catch (err) {
      checks.push({ name, required, ok: false, detail: err instanceof Error ? err.message : String(err) });
    }
  };

  const major = Number(process.versions.node.split('.')[0]);
  add('node', true, () => ({
    ok: major >= 20,
    detail: `v${process.versions.node}${major >= 20 ? '' : ' (need >= 20)'}`,
  }));
  add('old data dir', false, () => {
    const legacy = legacyDataDir(cwd, config.homeDir);
    return legacy === null
      ? { ok: true, detail: 'none in the current directory' }
      : {
          ok: false,
          detail:
            `${legacy} holds a data dir from before the fixed default (store/nanoclaw.db); ` +
            `this host uses ${config.homeDir}: move it there (stop the host first) or set NANOCLAW_HOME=${legacy}`,
        };
  });
  // The engines registered groups picked; none when the database cannot be read (its check says so).
  let groupEngines: Engine[] = [];
  add('database', true, () => {
    const store = openStore(config.paths.dbPath);
    try {
      const registered = store.listGroups();
      const groups = registered.length;
      groupEngines = registered.flatMap((g) => (g.containerConfig.engine ? [g.containerConfig.engine] : []));
      const check = store.quickCheck();
      if (check !== 'ok') {
        return {
          ok: false,
          detail: `${config.paths.dbPath} is damaged (${check.slice(0, 200)}); restore your latest backup of it`,
        };
      }
      return { ok: true, detail: `${config.paths.dbPath} (${groups} groups registered, quick_check ok)` };
    } finally {
      store.close();
    }
  });
  add('disk', true, () => {
    const freeMb = Math.floor(freeDiskBytes(config.paths.storeDir) / (1024 * 1024));
    const ok = freeMb >= config.minFreeDiskMb;
    return {
      ok,
      detail: ok
        ? `${freeMb} MB free on the data dir's disk (reserve ${config.minFreeDiskMb} MB)`
        : `only ${freeMb} MB free on the data dir's disk, below the reserve of ${config.minFreeDiskMb} MB: ` +
          `new runs wait until you free space (df -h ${config.paths.storeDir})`,
    };
  });
  // Selecting bwrap repairs the modes of NanoClaw's own directories (as root); doctor says so.
  const repairs: string[] = [];
  const selection = await selectBackend(backendSelection(config, (r) => repairs.push(repairNote(r))));
  for (const note of repairs)
    checks.push({ name: 'sandbox access', required: false, ok: true, detail: note });
  checks.push({
    name: 'sandbox',
    required: true,
    ok: selection.backend !== null,
    detail: selection.backend ? `${selection.backend.name}: ${selection.reason}` : selection.reason,
  });
  add('sandbox access', true, () => {
    const hostUid = process.getuid?.();
    if (hostUid !== 0) return { ok: true, detail: 'not needed: sandboxes run as this user' };
    const user = { uid: AGENT_UID, gid: AGENT_GID };
    const { problems } = checkSandboxAccess({
      targets: backendSelection(config).bwrap.accessTargets ?? [],
      user,
      hostUid,
      // Report only: the selection above already repaired what NanoClaw owns.
      ownedRoots: [],
    });
    return problems.length === 0
      ? {
          ok: true,
          detail: `the data directory and the install are reachable by the sandbox user (uid ${AGENT_UID})`,
        }
      : { ok: false, detail: problems.map((p) => describeProblem(p, user)).join('; ') };
  });
  add('credential', engineUsesModel(config.engine), () => {
    const credential = loadCredential({ env, homeDir: config.homeDir });
    return credential
      ? {
          ok: true,
          detail: `${credential.kind === 'api_key' ? 'ANTHROPIC_API_KEY' : 'CLAUDE_CODE_OAUTH_TOKEN'} present (from ${credential.source})`,
        }
      : {
          ok: false,
          detail: 'missing: set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN in the environment or in .env',
        };
  });
  const credential = engineUsesModel(config.engine) ? loadCredential({ env, homeDir: config.homeDir }) : null;
  if (credential) {
    try {
      const upstream = await checkModelUpstream({
        upstreamBaseUrl: config.upstreamBaseUrl,
        credential,
        modelName: config.model,
      });
      checks.push({ name: 'model upstream', required: true, ...upstream });
    } catch (err) {
      checks.push({
        name: 'model upstream',
        required: true,
        ok: false,
        detail: `cannot check ${config.upstreamBaseUrl}: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }
  add('engines', true, () =>
    describeEngines({
      configured: config.engine,
      groupEngines,
      claudeCode: claudeCodeInstalled(runnerPaths(findPackageRoot(import.meta.url)).runnerNodeModules),
    }),
  );
  const openai = config.openaiProvider;
  if (openai) {
    add('openai provider', false, () => {
      const keyed = loadOpenAiKey({ env, homeDir: config.homeDir }) !== '';
      return {
        ok: true,
        detail: `${openai.baseUrl}, model ${openai.model}, ${keyed ? 'OPENAI_API_KEY present' : 'no key (fine for a local server)'}; used by lite groups set to --provider openai`,
      };
    });
  }
  add('memory', false, () =>
    describeBoard({
      inUse: [config.engine, ...groupEngines],
      totalMemBytes: os.totalmem(),
    }),
  );
  add('runner', true, () => {
    const ok = fs.existsSync(runnerPaths(findPackageRoot(import.meta.url)).runnerEntry);
    return { ok, detail: ok ? 'dist/runner.mjs present' : 'dist/runner.mjs missing: run npm run build' };
  });
  add('whatsapp', false, () => {
    const account = readLinkedAccount(config.paths.authDir);
    return account
      ? { ok: true, detail: `linked as ${account.jid}` }
      : { ok: false, detail: 'not linked: run nanoclaw auth whatsapp' };
  });
  add('mount allowlist', false, () => {
    const allowlist = loadMountAllowlist(config.configDir);
    return allowlist
      ? { ok: true, detail: `${allowlist.allowedRoots.length} allowed roots` }
      : {
          ok: true,
          detail: `none (${config.configDir}/${MOUNT_ALLOWLIST_FILE} absent): no additional mounts`,
        };
  });
  add('egress allowlist', false, () => {
    const file = loadEgressAllowlist(config.configDir);
    const groups = Object.keys(file.groups).length;
    return { ok: true, detail: `${file.default.length} default entries, ${groups} groups with their own` };
  });

  const transcriber = await checkTranscriber(config, loadTranscriberKey({ env, homeDir: config.homeDir }));
  checks.push({ name: 'transcriber', required: false, ...transcriber });

  for (const check of checks) {
    const mark = check.ok ? 'ok  ' : check.required ? 'FAIL' : 'warn';
    print(`${mark} ${check.name}: ${check.detail}`);
  }
  return checks.some((c) => c.required && !c.ok) ? 1 : 0;
}
