// Long-running pieces (the server's nydus-backend-proxy, a node's nydusd) run as services: a systemd
// unit where PID 1 is systemd (as upstream's nydusd_http_server.service / nydusd.service), otherwise
// a supervised background process: a detached `nydus-distribute __supervise` that restarts the child
// when it dies (systemd-like backoff and start limit) and stops it on SIGTERM. Both are idempotent:
// starting a running service with the same command is a no-op.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NydusError } from '../util/errors.js';
import { cmdlineOf, isAlive, readPid, run, systemdAvailable, terminate, toolArgv } from './proc.js';

export type RestartPolicy = 'always' | 'on-failure';

export interface ServiceSpec {
  /** Unit name without ".service" (also names the pid/log files). */
  name: string;
  description: string;
  argv: string[];
  cwd: string;
  /** Where pid files, the log and the process-mode spec go. */
  stateDir: string;
  restart: RestartPolicy;
}

export type ServiceHandle =
  | { kind: 'systemd'; unit: string; unitPath: string }
  | { kind: 'process'; name: string; specFile: string; pidFile: string; childPidFile: string; logFile: string };

const UNIT_DIR = process.env.NYDUS_DISTRIBUTE_UNIT_DIR ?? '/etc/systemd/system';

export function serviceHandle(spec: ServiceSpec): ServiceHandle {
  if (systemdAvailable()) return { kind: 'systemd', unit: `${spec.name}.service`, unitPath: join(UNIT_DIR, `${spec.name}.service`) };
  return {
    kind: 'process',
    name: spec.name,
    specFile: join(spec.stateDir, `${spec.name}.service.json`),
    pidFile: join(spec.stateDir, `${spec.name}.pid`),
    childPidFile: join(spec.stateDir, `${spec.name}.child.pid`),
    logFile: join(spec.stateDir, `${spec.name}.log`),
  };
}

/** Every file a handle may leave behind (for clean). */
export function serviceFiles(h: ServiceHandle): string[] {
  return h.kind === 'systemd' ? [h.unitPath] : [h.specFile, h.pidFile, h.childPidFile, h.logFile];
}

function systemdQuote(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function unitText(spec: ServiceSpec): string {
  return `# Written by nydus-distribute; removed by its clean command.
[Unit]
Description=${spec.description}
After=network-online.target

[Service]
Type=simple
WorkingDirectory=${spec.cwd}
ExecStart=${spec.argv.map(systemdQuote).join(' ')}
Restart=${spec.restart}
RestartSec=1
TimeoutStopSec=15

[Install]
WantedBy=multi-user.target
`;
}

/** Supervisor pid when the process-mode service is up and the pid file still names our supervisor. */
function supervisorPid(h: Extract<ServiceHandle, { kind: 'process' }>): number | undefined {
  const pid = readPid(h.pidFile);
  if (pid === undefined || !isAlive(pid)) return undefined;
  const argv = cmdlineOf(pid);
  return argv.includes('__supervise') && argv.includes(h.specFile) ? pid : undefined;
}

export async function serviceRunning(h: ServiceHandle): Promise<boolean> {
  if (h.kind === 'process') return supervisorPid(h) !== undefined;
  const r = await run('systemctl', ['is-active', '--quiet', h.unit], { timeoutMs: 15_000 });
  return r.code === 0;
}

/** The command a running/installed service was started with, to detect a changed configuration. */
function installedArgv(h: ServiceHandle): string | undefined {
  try {
    if (h.kind === 'process') return JSON.stringify((JSON.parse(readFileSync(h.specFile, 'utf8')) as ServiceSpec).argv);
    const m = /^ExecStart=(.*)$/m.exec(readFileSync(h.unitPath, 'utf8'));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Starts the service unless it already runs with the same command (then 'running'); a service
 * running with another command (new IP/port) is restarted.
 */
export async function ensureService(spec: ServiceSpec): Promise<{ handle: ServiceHandle; action: 'started' | 'running' | 'restarted' }> {
  const h = serviceHandle(spec);
  const want = h.kind === 'process' ? JSON.stringify(spec.argv) : spec.argv.map(systemdQuote).join(' ');
  let action: 'started' | 'restarted' = 'started';
  if (await serviceRunning(h)) {
    if (installedArgv(h) === want) return { handle: h, action: 'running' };
    await stopService(h);
    action = 'restarted';
  }
  if (h.kind === 'systemd') {
    writeFileSync(h.unitPath, unitText(spec));
    for (const args of [['daemon-reload'], ['enable', '--now', h.unit]]) {
      const r = await run('systemctl', args, { timeoutMs: 60_000 });
      if (r.code !== 0) throw new NydusError('ERR_IO', `systemctl ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}`);
    }
    return { handle: h, action };
  }
  writeFileSync(h.specFile, JSON.stringify(spec, null, 2) + '\n');
  rmSync(h.childPidFile, { force: true });
  const log = openSync(h.logFile, 'a');
  try {
    // setsid (detached): the supervisor outlives this CLI and its terminal; stdio goes to the log.
    const child = spawn(process.execPath, [...toolArgv('nydus-distribute').slice(1), '__supervise', h.specFile], {
      cwd: spec.cwd,
      detached: true,
      stdio: ['ignore', log, log],
    });
    if (!child.pid) throw new NydusError('ERR_IO', `cannot start ${spec.name}`);
    writeFileSync(h.pidFile, `${child.pid}\n`);
    child.unref();
  } finally {
    closeSync(log);
  }
  return { handle: h, action };
}

/** Stops and uninstalls; safe to call when nothing runs. Returns pids it had to kill (process mode). */
export async function stopService(h: ServiceHandle): Promise<void> {
  if (h.kind === 'systemd') {
    if (existsSync(h.unitPath)) {
      await run('systemctl', ['disable', '--now', h.unit], { timeoutMs: 60_000 });
      rmSync(h.unitPath, { force: true });
      await run('systemctl', ['daemon-reload'], { timeoutMs: 60_000 });
    }
    return;
  }
  const sup = supervisorPid(h);
  if (sup !== undefined) await terminate(sup, 20_000);
  // The supervisor stops its child; if it was killed hard, the child may still run: end it by pid.
  const child = readPid(h.childPidFile);
  if (child !== undefined && isAlive(child) && cmdlineOf(child).length > 0) await terminate(child, 10_000);
  rmSync(h.pidFile, { force: true });
  rmSync(h.childPidFile, { force: true });
}

/** Last lines of the service log, for one-line start errors. */
export async function serviceLogTail(h: ServiceHandle, lines = 5): Promise<string> {
  if (h.kind === 'systemd') {
    const r = await run('journalctl', ['-u', h.unit, '-n', String(lines), '--no-pager', '-o', 'cat'], { timeoutMs: 10_000 });
    return r.stdout.trim();
  }
  try {
    return readFileSync(h.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
