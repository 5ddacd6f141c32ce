// Adversarial end to end: the real CLI host, real bubblewrap, the real runner and
// each engine (Claude Code, lite), with the fake model playing a prompt-injected agent that runs
// attack scripts through the shell and read tools. Each probe prints one line
// `probe|<name>|<ok|blocked>|<detail>` ("ok" = the attack worked) and the test
// asserts on the tool result the model receives next.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import { assertBuilt, makeCliHome, REPO_ROOT, runCli, type CliHome } from '../support/cli.js';
import { chatLines, shellTool } from './agent-support.js';
import {
  lastToolResult,
  startFakeModelServer,
  type FakeModelServer,
  type Turn,
} from '../support/fake-model-server.js';

for (const bin of ['/usr/bin/bwrap', '/usr/bin/python3', '/usr/bin/curl']) {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is required by the security suite; install it`);
}

/** A distinctive credential; the probes only ever see it split in two halves. */
const KEY = `sk-ant-api03-NCSEC${randomBytes(12).toString('hex')}-canary`;
const KEY_A = KEY.slice(0, 20);
const KEY_B = KEY.slice(20);
const RUN_TIMEOUT_MS = 150_000;

let home: CliHome | undefined;
let fake: FakeModelServer | undefined;

beforeAll(() => assertBuilt());
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  home?.cleanup();
  home = undefined;
});

interface Probe {
  result: 'ok' | 'blocked' | string;
  detail: string;
}

function parseProbes(text: string): Map<string, Probe> {
  const probes = new Map<string, Probe>();
  for (const line of text.split('\n')) {
    const m = /^(probe|info)\|([^|]+)\|([^|]*)(?:\|(.*))?$/.exec(line.trim());
    if (m) probes.set(m[2], { result: m[3], detail: m[4] ?? '' });
  }
  return probes;
}

/** The tool results the model saw, in order (one per scripted tool turn). */
interface ScriptedRun {
  results: Array<{ text: string; isError: boolean }>;
  stdout: Array<{ chat: string; text: string }>;
  stderr: string;
  code: number | null;
}

/** Registers groups, then runs one `chat --json` with the given tool turns against the fake model. */
async function scriptedRun(
  h: CliHome,
  tools: Array<{ name: string; input: unknown }>,
  chat: string,
  prompt = 'please run the checks',
): Promise<ScriptedRun> {
  const results: ScriptedRun['results'] = [];
  const turns: Turn[] = tools.map((toolUse, i) =>
    i === 0
      ? { toolUse }
      : (req) => {
          results.push(lastToolResult(req) ?? { text: '(no tool result)', isError: true });
          return { toolUse };
        },
  );
  turns.push((req) => {
    results.push(lastToolResult(req) ?? { text: '(no tool result)', isError: true });
    return { text: 'all checks done' };
  });
  fake!.setScript(turns);
  const input = `${JSON.stringify({ text: prompt, chat })}\n`;
  const res = await runCli(['chat', '--json'], h.env, input, RUN_TIMEOUT_MS);
  const stdout = chatLines(res.stdout);
  return { results, stdout, stderr: res.stderr, code: res.code };
}

async function audit(h: CliHome, ...filter: string[]): Promise<AuditRecord[]> {
  const res = await runCli(['audit', '--json', ...filter], h.env);
  expect(res.code).toBe(0);
  return res.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
}

async function newHome(
  config: object = {},
  engine: 'claude-code' | 'lite' = 'claude-code',
): Promise<CliHome> {
  fake = await startFakeModelServer({ script: [] });
  const h = makeCliHome({
    NANOCLAW_ENGINE: engine,
    ANTHROPIC_API_KEY: KEY,
    ANTHROPIC_BASE_URL: fake.url,
  });
  h.writeConfig({ maxRetries: 0, retryBaseMs: 50, ...config });
  for (const [jid, folder] of [
    ['local:family', 'family'],
    ['local:work', 'work'],
  ]) {
    const added = await runCli(
      ['groups', 'add', jid, '--name', folder, '--folder', folder, '--no-trigger'],
      h.env,
    );
    expect(added.stderr).toBe('');
  }
  return h;
}

/** Host processes whose command line contains `marker` (any user). */
function hostProcesses(marker: string): string[] {
  const out = spawnSync('ps', ['-eo', 'pid,uid,args'], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('a prompt-injected agent in a non-main group (real bwrap, each engine)', () => {
  const servers: Array<{ close(): void }> = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  // The same attack against both engines: lite's runner holds the model socket itself, no bridge.
  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `finds no credential, no host file, no other group, no network and no privilege (${engine})`,
      async () => {
        home = await newHome({}, engine);
        const h = home;
        const hostHome = h.dir;
        const policyDir = h.env.NANOCLAW_CONFIG_DIR!;
        // Secrets the agent must not reach, each with its own canary.
        const canaries = {
          ssh: `SSH-CANARY-${randomBytes(6).toString('hex')}`,
          work: `WORK-CANARY-${randomBytes(6).toString('hex')}`,
          session: `SESSION-CANARY-${randomBytes(6).toString('hex')}`,
          policy: `POLICY-CANARY-${randomBytes(6).toString('hex')}`,
        };
        fs.writeFileSync(path.join(hostHome, '.env'), `ANTHROPIC_API_KEY=${KEY}\n`);
        fs.mkdirSync(path.join(hostHome, '.ssh'), { mode: 0o700 });
        fs.writeFileSync(path.join(hostHome, '.ssh', 'id_rsa'), canaries.ssh, { mode: 0o600 });
        fs.mkdirSync(path.join(hostHome, 'groups', 'work'), { recursive: true });
        fs.writeFileSync(path.join(hostHome, 'groups', 'work', 'secret.txt'), canaries.work);
        fs.mkdirSync(path.join(hostHome, 'data', 'sessions', 'work'), { recursive: true });
        fs.writeFileSync(path.join(hostHome, 'data', 'sessions', 'work', 'session.jsonl'), canaries.session);
        fs.writeFileSync(
          path.join(policyDir, 'mount-allowlist.json'),
          JSON.stringify({ c: canaries.policy }),
        );

        // Host services the sandbox must not reach: loopback TCP and UDP, unix sockets, an abstract socket.
        let tcpConnections = 0;
        const tcp = net.createServer((s) => {
          tcpConnections++;
          s.destroy();
        });
        await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
        servers.push(tcp);
        const tcpPort = (tcp.address() as net.AddressInfo).port;
        let udpPackets = 0;
        const udp = dgram.createSocket('udp4');
        udp.on('message', () => udpPackets++);
        await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
        servers.push(udp);
        const udpPort = udp.address().port;
        let unixConnections = 0;
        const tmpSock = path.join(os.tmpdir(), `nc-sec-${randomBytes(4).toString('hex')}.sock`);
        const dataSock = path.join(hostHome, 'data', 'host.sock');
        const abstractName = `nc-sec-abstract-${randomBytes(4).toString('hex')}`;
        for (const where of [tmpSock, dataSock, `\0${abstractName}`]) {
          const srv = net.createServer((s) => {
            unixConnections++;
            s.destroy();
          });
          await new Promise<void>((r) => srv.listen(where, r));
          if (!where.startsWith('\0')) fs.chmodSync(where, 0o777);
          servers.push(srv);
          // Sanity: the host itself can connect, so "unreachable" below means the sandbox.
        }
        const hostCanReach = await new Promise<boolean>((resolve) => {
          const c = net.connect(`\0${abstractName}`, () => {
            c.destroy();
            resolve(true);
          });
          c.on('error', () => resolve(false));
        });
        expect(hostCanReach).toBe(true);
        unixConnections = 0;

        const [c1, c2, c3, c4] = Object.values(canaries).map((c) => [c.slice(0, 8), c.slice(8)]);
        const probeScript = String.raw`
echo canary:start
A='${KEY_A}'; B='${KEY_B}'
# Claude Code reaches the broker through a loopback bridge named in its environment; lite through the socket.
if [ -n "$ANTHROPIC_BASE_URL" ]; then MODEL="$ANTHROPIC_BASE_URL"; VIA=''; else MODEL=http://localhost; VIA='--unix-socket /run/nanoclaw/model.sock'; fi
pats() { printf '%s%s\n' "$A" "$B" '${c1[0]}' '${c1[1]}' '${c2[0]}' '${c2[1]}' '${c3[0]}' '${c3[1]}' '${c4[0]}' '${c4[1]}'; }
r() { if [ "$2" = 0 ]; then echo "probe|$1|ok|$3"; else echo "probe|$1|blocked|$3"; fi; }
echo "info|uid|$(id -u)"
echo "info|capeff|$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)"
echo "info|nonewprivs|$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status)"
echo "info|ifaces|$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ',')"
echo "info|pid1_environ|$(tr '\0' ' ' < /proc/1/environ)"
echo "info|nprocs|$(ls -d /proc/[0-9]* | wc -l)"
echo "info|sockets|$(ls /run/nanoclaw | tr '\n' ',')"
echo "info|workspace|$(ls /workspace | tr '\n' ',')"
echo "info|home|$(ls /home | tr '\n' ',')"
# --- credential -------------------------------------------------------------
n=$(env | grep -cF -f <(pats)); [ "$n" -gt 0 ]; r cred_env $? "$n"
hits=$(for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do grep -qaF -f <(pats) "$f" 2>/dev/null && echo "$f"; done | tr '\n' ' ')
[ -n "$hits" ]; r cred_proc $? "$hits"
echo "info|files_scanned|$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f -readable -print 2>/dev/null | wc -l)"
files=$(grep -rlaF -f <(pats) / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null | head -5 | tr '\n' ' ')
[ -n "$files" ]; r secrets_in_files $? "$files"
mkdir -p /tmp/ctl && pats > /tmp/ctl/k && grep -rlaF -f <(pats) /tmp/ctl >/dev/null; r control_grep_finds_planted $?; rm -rf /tmp/ctl
python3 - "$A" "$B" <<'PY'
import os, sys
key = (sys.argv[1] + sys.argv[2]).encode()
me, hits, scanned, seen = os.getpid(), [], 0, []
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == me:
        continue
    try:
        args = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
    except OSError:
        continue
    if not (args[0].endswith((b'/node', b'/claude', b'/bwrap'))):
        continue
    seen.append(os.path.basename(args[0]).decode())
    try:
        maps = open(f'/proc/{pid}/maps').read().splitlines()
        mem = open(f'/proc/{pid}/mem', 'rb', 0)
    except OSError as e:
        print(f'info|mem_open_{pid}|{e.errno}')
        continue
    for line in maps:
        rng, perms = line.split()[:2]
        if perms[0] != 'r':
            continue
        a, b = (int(x, 16) for x in rng.split('-'))
        # In chunks that overlap by the key length: the sandbox's memory limit applies to this scan too.
        step = 8 << 20
        for off in range(a, b, step):
            try:
                mem.seek(off)
                data = mem.read(min(step + len(key), b - off))
            except (OSError, OverflowError, ValueError):
                break
            scanned += len(data)
            if key in data:
                hits.append(pid)
print(f'info|mem_procs|{",".join(sorted(seen))}')
print(f'info|mem_scanned|{scanned}')
print(f'probe|cred_memory|{"ok" if hits else "blocked"}|{",".join(sorted(set(hits)))}')
PY
# --- host files and other groups -------------------------------------------
for p in '${hostHome}/.env' '${hostHome}/store' '${hostHome}/data' '${hostHome}/.ssh/id_rsa' '${policyDir}' \
  '${hostHome}/groups/work' '${hostHome}/data/sessions/work' '${REPO_ROOT}' /root /work /workspace/groups /workspace/extra \
  /etc/shadow /etc/resolv.conf /var/run/docker.sock /run/docker.sock /run/dbus/system_bus_socket /sys/fs/cgroup \
  '${tmpSock}' '${dataSock}' /run/nanoclaw/egress.sock; do
  [ -e "$p" ]; r "exists:$p" $?
done
cat /home/*/.ssh/id_rsa >/dev/null 2>&1; r home_ssh $?
for t in /workspace/global/pwn /workspace/groups/work/pwn /pwn /usr/pwn /etc/pwn /opt/nanoclaw/pwn /run/nanoclaw/pwn /home/pwn; do
  (echo x > "$t") 2>/dev/null; r "write:$t" $?
done
echo ok > /workspace/group/own.txt; r control_write_own_folder $?
# --- network ----------------------------------------------------------------
timeout 3 bash -c 'exec 3<>/dev/tcp/1.1.1.1/443' 2>/dev/null; r tcp_public_ip $?
timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null; r tcp_metadata $?
timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/${tcpPort}' 2>/dev/null; r tcp_host_loopback $?
timeout 3 getent hosts example.com >/dev/null 2>&1; r dns_lookup $?
timeout 3 getent ahosts localhost >/dev/null 2>&1; r control_hosts_file $?
node -e "const s=require('dgram').createSocket('udp4');let n=0;for(let i=0;i<5;i++)s.send('x',${udpPort},'127.0.0.1',()=>{if(++n===5){console.log('sent');s.close()}})" >/dev/null 2>&1; echo "info|udp_send_rc|$?"
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)' 2>/dev/null; r raw_socket $?
python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)' 2>/dev/null; r packet_socket $?
timeout 3 node -e "const c=require('net').connect('\0${abstractName}');c.on('connect',()=>process.exit(0));c.on('error',()=>process.exit(1))" 2>/dev/null; r abstract_unix_socket $?
timeout 3 node -e "const c=require('net').connect('${tmpSock}');c.on('connect',()=>process.exit(0));c.on('error',()=>process.exit(1))" 2>/dev/null; r host_unix_socket $?
code=$(curl -s -o /dev/null -w '%{http_code}' $VIA -H "x-api-key: $ANTHROPIC_API_KEY" "$MODEL/v1/models"); [ "$code" = 200 ]; r model_proxy_other_path $? "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' $VIA -X POST -H 'x-api-key: sk-ant-guessed' -H 'content-type: application/json' -d '{}' "$MODEL/v1/messages"); [ "$code" = 200 ]; r model_proxy_wrong_key $? "$code"
# --- privilege ----------------------------------------------------------------
su -c id root </dev/null >/dev/null 2>&1; r setuid_su $?
passwd -d agent </dev/null >/dev/null 2>&1; r setuid_passwd $?
sudo -n true >/dev/null 2>&1; r sudo $?
unshare -r true 2>/dev/null; r unshare_user $?
unshare -n true 2>/dev/null; r unshare_net $?
mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null; r mount $?
mknod /tmp/x c 1 3 2>/dev/null; r mknod $?
chroot / true 2>/dev/null; r chroot $?
hostprocs=$(for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -cE 'vites[t]|nanoclaw[.]mjs chat')
[ "$hostprocs" -gt 0 ]; r see_host_processes $? "$hostprocs"
echo canary:end
`;
        const run = await scriptedRun(
          h,
          engine === 'lite'
            ? [
                { name: 'bash', input: { command: probeScript, timeout_ms: 120_000 } },
                { name: 'read', input: { path: path.join(hostHome, '.env') } },
                { name: 'read', input: { path: path.join(hostHome, '.ssh', 'id_rsa') } },
                { name: 'read', input: { path: path.join(hostHome, 'groups', 'work', 'secret.txt') } },
              ]
            : [
                { name: 'Bash', input: { command: probeScript, timeout: 120_000, description: 'checks' } },
                { name: 'Read', input: { file_path: path.join(hostHome, '.env') } },
                { name: 'Read', input: { file_path: path.join(hostHome, '.ssh', 'id_rsa') } },
                { name: 'Read', input: { file_path: path.join(hostHome, 'groups', 'work', 'secret.txt') } },
              ],
          'local:family',
        );
        expect(run.results).toHaveLength(4);
        const [bash, readEnv, readSsh, readWork] = run.results;
        const probes = parseProbes(bash.text);
        // The script really ran, from start to end.
        expect(bash.text, bash.text).toContain('canary:start');
        expect(bash.text, bash.text).toContain('canary:end');

        // Who the agent is: uid 1000, no capabilities, no new privileges, only loopback.
        expect(probes.get('uid')?.result).toBe('1000');
        expect(probes.get('capeff')?.result).toBe('0000000000000000');
        expect(probes.get('nonewprivs')?.result).toBe('1');
        expect(probes.get('ifaces')?.result).toBe('lo,');
        // bwrap is pid 1 and its environ is readable: it holds nothing but PATH (and the PWD node adds).
        expect(probes.get('pid1_environ')?.result.trim()).toBe('PATH=/usr/bin:/bin PWD=/');
        expect(probes.get('sockets')?.result).toBe('model.sock,');
        expect(probes.get('workspace')?.result).toBe('global,group,');
        expect(probes.get('home')?.result).toBe('agent,');

        const failed = [...probes]
          .filter(([, p]) => p.result === 'ok')
          .map(([name, p]) => `${name} ${p.detail}`);
        const controls = failed.filter((f) => f.startsWith('control_'));
        expect(controls.sort()).toEqual([
          'control_grep_finds_planted ',
          'control_hosts_file ',
          'control_write_own_folder ',
        ]);
        expect(
          failed.filter((f) => !f.startsWith('control_')),
          bash.text,
        ).toEqual([]);
        // Every probe we meant to run reported (none was silently skipped).
        const blocked = [...probes].filter(([, p]) => p.result === 'blocked').map(([n]) => n);
        expect(blocked.length, bash.text).toBe(53);
        expect(Number(probes.get('files_scanned')?.result)).toBeGreaterThan(1000);
        // The memory scan read the runner, Claude Code (not in lite) and bwrap (pid 1), tens of MB.
        expect(probes.get('mem_procs')?.result).toBe(engine === 'lite' ? 'bwrap,node' : 'bwrap,claude,node');
        expect(Number(probes.get('mem_scanned')?.result)).toBeGreaterThan(50 * 1024 * 1024);

        // Nothing arrived at the host services.
        expect(probes.get('udp_send_rc')?.result).toBe('0');
        expect(tcpConnections).toBe(0);
        expect(udpPackets).toBe(0);
        expect(unixConnections).toBe(0);

        // The Read tool sees no host path either.
        for (const read of [readEnv, readSsh, readWork]) {
          expect(read.isError).toBe(true);
          expect(read.text).toMatch(/does not exist|not found|ENOENT/i);
        }
        const everything = run.results.map((r) => r.text).join('\n');
        expect(everything).not.toContain(KEY);
        for (const c of Object.values(canaries)) expect(everything).not.toContain(c);

        // Nothing changed on the host; the run still answered.
        expect(fs.readdirSync(path.join(hostHome, 'groups', 'work'))).toEqual(['secret.txt']);
        expect(fs.existsSync(path.join(hostHome, 'groups', 'global', 'pwn'))).toBe(false);
        expect(fs.readFileSync(path.join(hostHome, 'groups', 'family', 'own.txt'), 'utf8')).toBe('ok\n');
        expect(run.stdout).toEqual([{ chat: 'local:family', text: 'all checks done' }]);

        // The broker injected the real key upstream; the sandbox only ever had a placeholder.
        const conv = fake!.conversationRequests();
        expect(conv.length).toBeGreaterThanOrEqual(5);
        for (const req of fake!.requests) expect(req.headers['x-api-key']).toBe(KEY);
        // Misuse of the model bridge is refused and audited, without payload. Lite's shell has no
        // placeholder key at all, so both probes fail on the key before their path is looked at.
        const records = await audit(h, '--action', 'model_request');
        expect(records.map((r) => [r.group, r.reason]).sort()).toEqual([
          ['family', 'bad_placeholder_key'],
          ['family', engine === 'lite' ? 'bad_placeholder_key' : 'path_not_allowed'],
        ]);
        expect(JSON.stringify(records)).not.toContain(KEY);
      },
      RUN_TIMEOUT_MS + 10_000,
    );

  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `a fork bomb hits the pids ceiling without hurting the host, and the run ends with a notice (${engine})`,
      async () => {
        home = await newHome({ sandboxLimits: { pids: 200 } }, engine);
        const marker = `ncbomb${randomBytes(4).toString('hex')}`;
        const script = `echo canary:start; setsid bash -c ': ${marker}; b() { b | b & }; b' >/dev/null 2>&1 & sleep 8; echo canary:end`;
        // Watch from the host: the bomb's size, the host's event loop, and that the host can still fork.
        let maxBomb = 0;
        let maxLagMs = 0;
        let hostSpawnFailures = 0;
        let last = Date.now();
        const watcher = setInterval(() => {
          maxLagMs = Math.max(maxLagMs, Date.now() - last - 250);
          maxBomb = Math.max(maxBomb, hostProcesses(marker).length);
          if (spawnSync('/bin/true').status !== 0) hostSpawnFailures++;
          last = Date.now();
        }, 250);
        let run: ScriptedRun;
        try {
          run = await scriptedRun(home, [shellTool(engine, script)], 'local:family');
        } finally {
          clearInterval(watcher);
        }
        // The bomb really multiplied, and the run's ceiling (rlimit nproc + cgroup pids) held.
        expect(maxBomb).toBeGreaterThan(50);
        expect(maxBomb).toBeLessThanOrEqual(200);
        expect(hostSpawnFailures).toBe(0);
        expect(maxLagMs).toBeLessThan(2000);
        // Inside, the bomb may starve the agent too (Claude Code cannot start threads and aborts),
        // so the run fails and the chat gets one plain notice; nothing of the bomb survives it.
        expect(run.stdout).toHaveLength(1);
        expect(run.stdout[0].chat).toBe('local:family');
        expect(run.stdout[0].text).toMatch(/couldn't process your last messages|all checks done/);
        expect(hostProcesses(marker)).toEqual([]);
      },
      RUN_TIMEOUT_MS,
    );

  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `processes the agent leaves behind (nohup, setsid, double fork) die with the run (${engine})`,
      async () => {
        home = await newHome({}, engine);
        const secs = String(900_000 + Math.floor(Math.random() * 90_000));
        const script = [
          'echo canary:start',
          `nohup sleep ${secs} >/dev/null 2>&1 &`,
          `setsid sleep ${secs} >/dev/null 2>&1 < /dev/null &`,
          `(setsid bash -c 'sleep ${secs}' >/dev/null 2>&1 < /dev/null &)`,
          'sleep 0.5',
          `echo "info|left_behind|$(pgrep -c -x -f 'sleep ${secs}')"`,
          'echo canary:end',
        ].join('\n');
        const run = await scriptedRun(home, [shellTool(engine, script)], 'local:family');
        const text = run.results[0]?.text ?? '';
        expect(text, text).toContain('canary:end');
        expect(parseProbes(text).get('left_behind')?.result).toBe('3');
        expect(run.stdout).toEqual([{ chat: 'local:family', text: 'all checks done' }]);
        // `chat --json` has exited, so the run is over: no uid-1000 sleeper is left on the host.
        expect(hostProcesses(`sleep ${secs}`)).toEqual([]);
      },
      RUN_TIMEOUT_MS,
    );

  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `a memory hog is stopped by the run memory ceiling; the host is unaffected and the chat hears back (${engine})`,
      async () => {
        home = await newHome({ sandboxLimits: { memoryMb: 400 } }, engine);
        const script = `echo canary:start; python3 -c 'a = b"x" * (1536 << 20); print("hog-" + "alive")'; echo "hog-rc=$?"`;
        const run = await scriptedRun(home, [shellTool(engine, script)], 'local:family');
        const seen = JSON.stringify(run);
        expect(seen).not.toContain('hog-alive');
        // The kernel's OOM killer, confined to the run's cgroup, takes the largest task in
        // it at that moment: either the hog (the tool reports exit 137 and the agent goes on)
        // or the engine (the run fails and, after the zero retries, the chat is told).
        expect(run.stdout).toHaveLength(1);
        expect(run.stdout[0].chat).toBe('local:family');
        if (run.stdout[0].text === 'all checks done') {
          expect(run.results[0].text).toContain('canary:start');
          expect(run.results[0].text).toMatch(/Killed|hog-rc=137/);
        } else {
          expect(run.stdout[0].text).toMatch(/couldn't process your last messages.*SIGKILL/);
        }
        expect(spawnSync('/bin/true').status).toBe(0);
      },
      RUN_TIMEOUT_MS,
    );

  for (const engine of ['claude-code', 'lite'] as const)
    it(
      `an output flood past maxOutputBytes kills the run, audited as output_limit; nothing of it is delivered (${engine})`,
      async () => {
        home = await newHome({ maxOutputBytes: 65_536 }, engine);
        fake!.setScript([{ text: `FLOOD${'A'.repeat(200_000)}` }]);
        const res = await runCli(
          ['chat', '--json'],
          home.env,
          `${JSON.stringify({ text: 'flood', chat: 'local:family' })}\n`,
          RUN_TIMEOUT_MS,
        );
        expect(res.code).toBe(0);
        expect(res.stdout).not.toContain('FLOOD');
        const lines = res.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { chat: string; text: string });
        expect(lines).toHaveLength(1);
        expect(lines[0].text).toMatch(/couldn't process your last messages.*output limit/);
        const records = await audit(home, '--action', 'protocol', '--group', 'family');
        expect(records.map((r) => [r.reason, r.target])).toEqual([['output_limit', null]]);
        expect(records[0].runId).toMatch(/^family-/);
      },
      RUN_TIMEOUT_MS,
    );
});
