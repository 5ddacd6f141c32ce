import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import {
  ConfigError,
  ENV_SOURCE,
  ensureHomeDir,
  loadConfig,
  loadCredential,
  legacyDataDir,
  ROOT_HOME_DIR,
} from '../../../src/config/config.js';

let root: string;
let userHome: string;
let configFile: string;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'nanoclaw-config-'));
  userHome = path.join(root, 'home');
  mkdirSync(path.join(userHome, '.config', 'nanoclaw'), { recursive: true });
  configFile = path.join(userHome, '.config', 'nanoclaw', 'config.json');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function load(env: NodeJS.ProcessEnv = {}) {
  return loadConfig({ env, cwd: root, userHome });
}

function loadError(env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig defaults', () => {
  it('uses small-board defaults and puts every path under the data root', () => {
    const config = load({ TZ: 'UTC', NANOCLAW_HOME: root });
    expect(config).toMatchObject({
      homeDir: root,
      configDir: path.join(userHome, '.config', 'nanoclaw'),
      assistantName: 'Andy',
      timeZone: 'UTC',
      sandbox: 'auto',
      engine: 'claude-code',
      allowUnsandboxedMain: false,
      allowUnenforcedEgress: false,
      dockerBinary: 'docker',
      upstreamBaseUrl: 'https://api.anthropic.com',
      model: null,
      logLevel: 'info',
      maxConcurrentRuns: 2,
      maxPendingTasksPerGroup: 20,
      idleTimeoutMs: 300_000,
      runTimeoutMs: 900_000,
      runMaxWallMs: 1_800_000,
      groupDiskQuotaMb: 1024,
      maxActiveTasksPerGroup: 50,
      shutdownGraceMs: 10_000,
      maxOutputBytes: 1_048_576,
      maxBrokerConnectionsPerRun: 32,
      retryBaseMs: 5_000,
      maxRetries: 5,
      modelTroubleNoticeMs: 3_000,
      modelResponseTimeoutMs: 60_000,
      contextWindowTokens: 200_000,
      compactAtFraction: 0.75,
      openaiProvider: null,
      minTaskIntervalMs: 60_000,
      messageRetentionDays: 90,
      outboxRetryBaseMs: 2_000,
      outboxRetryMaxMs: 300_000,
      outboxMaxAttempts: 10,
      sandboxLimits: { memoryMb: 1024, pids: 256, fileSizeMb: 512, openFiles: 1024 },
    });
    expect(config.paths).toEqual({
      storeDir: path.join(root, 'store'),
      dbPath: path.join(root, 'store', 'nanoclaw.db'),
      authDir: path.join(root, 'store', 'auth'),
      groupsDir: path.join(root, 'groups'),
      dataDir: path.join(root, 'data'),
      sessionsDir: path.join(root, 'data', 'sessions'),
      runsDir: path.join(root, 'data', 'runs'),
      logsDir: path.join(root, 'logs'),
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('defaults the time zone to the system zone', () => {
    // The name may differ in spelling (zoneinfo's "Etc/UTC" vs ICU's "UTC"); the rules must not.
    const offsets = (timeZone: string) => {
      const format = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
      return [0, 90, 180, 270].map((day) => format.format(Date.UTC(2026, 0, 1) + day * 86_400_000));
    };
    const system = Intl.DateTimeFormat().resolvedOptions().timeZone;
    expect(offsets(load().timeZone)).toEqual(offsets(system));
  });
});

describe('the data and config directories', () => {
  it('default to the XDG places under the user home, whatever the current directory', () => {
    const a = loadConfig({ env: {}, cwd: root, userHome });
    const b = loadConfig({ env: {}, cwd: path.join(root, 'elsewhere'), userHome });
    expect(a.homeDir).toBe(path.join(userHome, '.local', 'share', 'nanoclaw'));
    expect(a.configDir).toBe(path.join(userHome, '.config', 'nanoclaw'));
    expect(b.homeDir).toBe(a.homeDir);
    expect(b.configDir).toBe(a.configDir);
  });

  it('follow absolute XDG_DATA_HOME / XDG_CONFIG_HOME and ignore relative ones', () => {
    const xdg = load({ XDG_DATA_HOME: '/srv/data', XDG_CONFIG_HOME: '/srv/conf' });
    expect(xdg.homeDir).toBe('/srv/data/nanoclaw');
    expect(xdg.configDir).toBe('/srv/conf/nanoclaw');
    const relative = load({ XDG_DATA_HOME: 'data', XDG_CONFIG_HOME: 'conf' });
    expect(relative.homeDir).toBe(path.join(userHome, '.local', 'share', 'nanoclaw'));
    expect(relative.configDir).toBe(path.join(userHome, '.config', 'nanoclaw'));
  });

  it("put a root host under /var/lib (root's home is closed to the sandbox user), policy still in ~/.config", () => {
    const config = loadConfig({ env: {}, cwd: root, userHome, isRoot: true });
    expect(config.homeDir).toBe(ROOT_HOME_DIR);
    expect(config.configDir).toBe(path.join(userHome, '.config', 'nanoclaw'));
    expect(loadConfig({ env: { NANOCLAW_HOME: '~/nc' }, cwd: root, userHome, isRoot: true }).homeDir).toBe(
      path.join(userHome, 'nc'),
    );
  });

  it('NANOCLAW_HOME and NANOCLAW_CONFIG_DIR win over XDG, and may be relative to the cwd', () => {
    const config = load({
      NANOCLAW_HOME: 'here',
      NANOCLAW_CONFIG_DIR: '~/policy',
      XDG_DATA_HOME: '/srv/data',
      XDG_CONFIG_HOME: '/srv/conf',
    });
    expect(config.homeDir).toBe(path.join(root, 'here'));
    expect(config.configDir).toBe(path.join(userHome, 'policy'));
  });

  it('refuses a config dir inside the parts of the data dir that sandboxes see', () => {
    for (const inside of ['groups', 'groups/main/policy', 'data/sessions/x']) {
      const err = loadError({ NANOCLAW_HOME: root, NANOCLAW_CONFIG_DIR: path.join(root, inside) });
      expect(err.field).toBe('NANOCLAW_CONFIG_DIR');
      expect(err.message).toContain('move it out, e.g. NANOCLAW_CONFIG_DIR=~/.config/nanoclaw');
    }
    // Beside them is fine (the tests' own layout), and so is a name that only starts alike.
    expect(load({ NANOCLAW_HOME: root, NANOCLAW_CONFIG_DIR: path.join(root, 'policy') }).configDir).toBe(
      path.join(root, 'policy'),
    );
    expect(
      load({ NANOCLAW_HOME: root, NANOCLAW_CONFIG_DIR: path.join(root, 'groups-policy') }).configDir,
    ).toBe(path.join(root, 'groups-policy'));
  });

  it('creates the data root on first use, traversable (0711) and not listable by others', () => {
    const home = path.join(root, 'fresh', 'share', 'nanoclaw');
    const umask = process.umask(0o077);
    try {
      ensureHomeDir(home);
    } finally {
      process.umask(umask);
    }
    expect(statSync(home).mode & 0o777).toBe(0o711);
    // An existing directory is left as the owner made it.
    const own = path.join(root, 'own');
    mkdirSync(own, { mode: 0o700 });
    ensureHomeDir(own);
    expect(statSync(own).mode & 0o777).toBe(0o700);
  });

  it('finds a data dir left in the current directory by older versions', () => {
    const old = path.join(root, 'checkout');
    mkdirSync(path.join(old, 'store'), { recursive: true });
    expect(legacyDataDir(old, path.join(root, 'new'))).toBeNull();
    writeFileSync(path.join(old, 'store', 'nanoclaw.db'), '');
    expect(legacyDataDir(old, path.join(root, 'new'))).toBe(old);
    expect(legacyDataDir(old, old)).toBeNull();
  });
});

describe('loadConfig from the environment', () => {
  it('honours every env-named knob', () => {
    const config = load({
      NANOCLAW_HOME: 'data-root',
      NANOCLAW_CONFIG_DIR: path.join(root, 'policy'),
      ASSISTANT_NAME: 'Bob',
      TZ: 'Europe/Berlin',
      NANOCLAW_SANDBOX: 'docker',
      NANOCLAW_ENGINE: 'echo',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:8080/',
      LOG_LEVEL: 'debug',
    });
    expect(config.homeDir).toBe(path.join(root, 'data-root'));
    expect(config.paths.dbPath).toBe(path.join(root, 'data-root', 'store', 'nanoclaw.db'));
    expect(config.configDir).toBe(path.join(root, 'policy'));
    expect(config.assistantName).toBe('Bob');
    expect(config.timeZone).toBe('Europe/Berlin');
    expect(config.sandbox).toBe('docker');
    expect(config.engine).toBe('echo');
    expect(config.upstreamBaseUrl).toBe('http://127.0.0.1:8080');
    expect(config.logLevel).toBe('debug');
  });

  it('treats empty variables as unset and accepts POSIX ":Area/City"', () => {
    const config = load({ ASSISTANT_NAME: '', TZ: ':Asia/Tokyo' });
    expect(config.assistantName).toBe('Andy');
    expect(config.timeZone).toBe('Asia/Tokyo');
  });

  it('takes the model from NANOCLAW_MODEL and refuses a malformed name', () => {
    expect(load().model).toBeNull();
    expect(load({ NANOCLAW_MODEL: 'claude-sonnet-4-5' }).model).toBe('claude-sonnet-4-5');
    expect(loadError({ NANOCLAW_MODEL: 'two words' }).field).toBe('NANOCLAW_MODEL');
  });

  it('accepts only zone names, never a path that happens to name a file', () => {
    for (const zone of ['../../../etc/passwd', '/etc/passwd', 'Europe/../../../etc/passwd']) {
      expect(loadError({ TZ: zone }).field).toBe('TZ');
    }
    expect(load({ TZ: 'America/Argentina/Buenos_Aires' }).timeZone).toBe('America/Argentina/Buenos_Aires');
  });

  it('rejects a bad time zone, naming the variable and an example', () => {
    const err = loadError({ TZ: 'Mars/Olympus' });
    expect(err.file).toBe(ENV_SOURCE);
    expect(err.field).toBe('TZ');
    expect(err.message).toMatch(/TZ="Mars\/Olympus" is invalid: .*"Europe\/Berlin"/);
  });

  it('rejects a bad assistant name, sandbox, engine and URL', () => {
    expect(loadError({ ASSISTANT_NAME: 'Andy Bot' }).field).toBe('ASSISTANT_NAME');
    expect(loadError({ NANOCLAW_SANDBOX: 'vm' }).message).toMatch(/NANOCLAW_SANDBOX="vm".*"bwrap"/);
    expect(loadError({ NANOCLAW_ENGINE: 'gpt' }).field).toBe('NANOCLAW_ENGINE');
    expect(loadError({ ANTHROPIC_BASE_URL: 'ftp://x' }).field).toBe('ANTHROPIC_BASE_URL');
    expect(loadError({ LOG_LEVEL: 'loud' }).field).toBe('LOG_LEVEL');
  });
});

describe('loadConfig from config.json', () => {
  it('overrides defaults, merging nested sandbox limits', () => {
    writeFileSync(
      configFile,
      JSON.stringify({
        maxConcurrentRuns: 1,
        idleTimeoutMs: 60_000,
        sandbox: 'bwrap',
        allowUnsandboxedMain: true,
        dockerBinary: 'podman',
        sandboxLimits: { memoryMb: 512 },
      }),
    );
    const config = load({ TZ: 'UTC' });
    expect(config.maxConcurrentRuns).toBe(1);
    expect(config.idleTimeoutMs).toBe(60_000);
    expect(config.sandbox).toBe('bwrap');
    expect(config.allowUnsandboxedMain).toBe(true);
    expect(config.dockerBinary).toBe('podman');
    expect(config.sandboxLimits).toEqual({ memoryMb: 512, pids: 256, fileSizeMb: 512, openFiles: 1024 });
    expect(config.runTimeoutMs).toBe(900_000);
  });

  it('takes the model-trouble knobs, and refuses a response wait under a second', () => {
    writeFileSync(configFile, JSON.stringify({ modelTroubleNoticeMs: 0, modelResponseTimeoutMs: 5_000 }));
    const config = load({ TZ: 'UTC' });
    expect(config.modelTroubleNoticeMs).toBe(0);
    expect(config.modelResponseTimeoutMs).toBe(5_000);
    writeFileSync(configFile, '{\n  "modelResponseTimeoutMs": 10\n}');
    const err = loadError();
    expect(err.field).toBe('modelResponseTimeoutMs');
    expect(err.message).toMatch(/:2: "modelResponseTimeoutMs": expected a whole number ≥ 1000, got 10$/);
  });

  it('lets the environment win over the file for env-named knobs', () => {
    writeFileSync(
      configFile,
      JSON.stringify({ assistantName: 'Filey', sandbox: 'bwrap', timeZone: 'Asia/Tokyo' }),
    );
    const config = load({ ASSISTANT_NAME: 'Envy', NANOCLAW_SANDBOX: 'none' });
    expect(config.assistantName).toBe('Envy');
    expect(config.sandbox).toBe('none');
    expect(config.timeZone).toBe('Asia/Tokyo');
  });

  it('rejects an unknown key, naming it, the file and its line', () => {
    writeFileSync(configFile, '{\n  "maxConcurrentRuns": 2,\n  "maxConcurentRuns": 3\n}\n');
    const err = loadError();
    expect(err.file).toBe(configFile);
    expect(err.line).toBe(3);
    expect(err.field).toBe('maxConcurentRuns');
    expect(err.message).toContain(`${configFile}:3:`);
    expect(err.message).toContain('unknown setting "maxConcurentRuns"');
  });

  it('rejects an unknown nested key', () => {
    writeFileSync(configFile, '{\n  "sandboxLimits": {\n    "cpus": 2\n  }\n}');
    const err = loadError();
    expect(err.field).toBe('sandboxLimits.cpus');
    expect(err.line).toBe(3);
  });

  it('rejects a wrongly typed value, naming the field, the line and what was expected', () => {
    writeFileSync(configFile, '{\n  "sandbox": "bwrap",\n  "maxConcurrentRuns": "two"\n}');
    const err = loadError();
    expect(err.line).toBe(3);
    expect(err.field).toBe('maxConcurrentRuns');
    expect(err.message).toMatch(/:3: "maxConcurrentRuns": expected a whole number ≥ 1, got "two"$/);
  });

  it('rejects a bad time zone in the file', () => {
    writeFileSync(configFile, '{"timeZone": "Nowhere/Land"}');
    const err = loadError();
    expect(err.field).toBe('timeZone');
    expect(err.message).toMatch(/IANA time zone/);
  });

  it('rejects corrupt JSON, naming the file and the line', () => {
    writeFileSync(configFile, '{\n  "maxConcurrentRuns": 2,\n  "idleTimeoutMs": 1000,\n}\n');
    const err = loadError();
    expect(err.file).toBe(configFile);
    expect(err.line).toBe(4);
    expect(err.message).toBe(`${configFile}:4: invalid JSON: trailing comma before "}"`);
  });

  it('finds the line of syntax errors JSON.parse reports without a position', () => {
    writeFileSync(configFile, '{\n  "a": 1,\n\n  "b": tru\n}');
    expect(loadError().line).toBe(4);
    writeFileSync(configFile, '{\n  "a": 1');
    expect(loadError().message).toMatch(/:2: invalid JSON: .*end of file/);
    writeFileSync(configFile, '{\n  "a": "unterminated\n}');
    expect(loadError().line).toBe(2);
  });

  it('rejects a file that is not an object', () => {
    writeFileSync(configFile, '[1, 2]');
    expect(loadError().message).toMatch(/expected a JSON object of settings/);
  });

  it('rejects inconsistent outbox backoff bounds', () => {
    writeFileSync(configFile, '{"outboxRetryBaseMs": 600000}');
    expect(loadError().field).toBe('outboxRetryMaxMs');
  });

  it('tolerates a byte-order mark', () => {
    writeFileSync(configFile, '\ufeff{"maxRetries": 0}');
    expect(load().maxRetries).toBe(0);
  });
});

describe('loadCredential', () => {
  it('reads the credential from the environment first', () => {
    writeFileSync(path.join(root, '.env'), 'ANTHROPIC_API_KEY=from-file\n');
    expect(loadCredential({ env: { ANTHROPIC_API_KEY: 'sk-env' }, homeDir: root })).toEqual({
      kind: 'api_key',
      value: 'sk-env',
      source: 'env',
    });
    expect(loadCredential({ env: { CLAUDE_CODE_OAUTH_TOKEN: 'oat-env' }, homeDir: root })).toEqual({
      kind: 'oauth',
      value: 'oat-env',
      source: 'env',
    });
  });

  it('falls back to <homeDir>/.env with quotes, comments and export', () => {
    writeFileSync(
      path.join(root, '.env'),
      [
        '# model credential',
        'OTHER_SECRET=ignored',
        'export CLAUDE_CODE_OAUTH_TOKEN="oat-123" # set by auth',
        '',
      ].join('\n'),
    );
    expect(loadCredential({ env: {}, homeDir: root })).toEqual({
      kind: 'oauth',
      value: 'oat-123',
      source: '.env',
    });

    writeFileSync(path.join(root, '.env'), "ANTHROPIC_API_KEY='sk-single'\r\n");
    expect(loadCredential({ env: {}, homeDir: root })?.value).toBe('sk-single');

    writeFileSync(path.join(root, '.env'), 'ANTHROPIC_API_KEY = sk-bare # comment\n');
    expect(loadCredential({ env: {}, homeDir: root })).toEqual({
      kind: 'api_key',
      value: 'sk-bare',
      source: '.env',
    });
  });

  it('prefers the API key when both are present in one source', () => {
    writeFileSync(path.join(root, '.env'), 'CLAUDE_CODE_OAUTH_TOKEN=oat\nANTHROPIC_API_KEY=sk\n');
    expect(loadCredential({ env: {}, homeDir: root })?.kind).toBe('api_key');
  });

  it('returns null when there is no credential anywhere', () => {
    expect(loadCredential({ env: {}, homeDir: root })).toBeNull();
    expect(loadCredential({ env: { ANTHROPIC_API_KEY: '' }, homeDir: root })).toBeNull();
    writeFileSync(path.join(root, '.env'), '# nothing here\nANTHROPIC_API_KEY=\n');
    expect(loadCredential({ env: {}, homeDir: root })).toBeNull();
  });
});
