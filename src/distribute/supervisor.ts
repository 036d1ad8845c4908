// The process-mode stand-in for systemd's Restart=: runs one child, restarts it when it dies
// (policy 'always', or 'on-failure' = non-zero exit or signal), with backoff and a start limit so a
// child that cannot start (port taken, bad config) does not spin forever. SIGTERM/SIGINT stop the
// child (SIGTERM, then SIGKILL after 10 s) and end the supervisor.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ServiceSpec } from './service.js';
import { serviceHandle } from './service.js';

const START_LIMIT_BURST = 5;
const START_LIMIT_INTERVAL_MS = 60_000;
/** A run shorter than this counts toward the start limit. */
const SHORT_RUN_MS = 5_000;

function stamp(msg: string): void {
  process.stderr.write(`[${new Date().toISOString()}] supervisor: ${msg}\n`);
}

export async function supervise(specFile: string): Promise<number> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ServiceSpec;
  const h = serviceHandle(spec);
  if (h.kind !== 'process') throw new Error('supervise: not a process-mode service');
  writeFileSync(h.pidFile, `${process.pid}\n`);
  let child: ChildProcess | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    stamp(`${sig}: stopping ${spec.name}`);
    wake?.();
    if (child?.pid) {
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
      const pid = child.pid;
      setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000).unref();
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => { /* detached; ignore terminal hangups */ });

  const shortRuns: number[] = [];
  let backoff = 500;
  while (!stopping) {
    const started = Date.now();
    const [cmd, ...args] = spec.argv;
    child = spawn(cmd!, args, { cwd: spec.cwd, stdio: ['ignore', 'inherit', 'inherit'] });
    if (child.pid) writeFileSync(h.childPidFile, `${child.pid}\n`);
    stamp(`started ${spec.name} pid ${child.pid ?? '?'}`);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child!.once('error', (e) => { stamp(`spawn failed: ${e.message}`); resolve({ code: 127, signal: null }); });
      child!.once('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    rmSync(h.childPidFile, { force: true });
    child = undefined;
    if (stopping) break;
    stamp(`${spec.name} exited (${signal ? `signal ${signal}` : `code ${code}`})`);
    const failed = signal !== null || code !== 0;
    if (spec.restart === 'on-failure' && !failed) break;
    const ran = Date.now() - started;
    if (ran < SHORT_RUN_MS) {
      shortRuns.push(Date.now());
      while (shortRuns.length && shortRuns[0]! < Date.now() - START_LIMIT_INTERVAL_MS) shortRuns.shift();
      if (shortRuns.length >= START_LIMIT_BURST) {
        stamp(`${spec.name} failed ${START_LIMIT_BURST} times within ${START_LIMIT_INTERVAL_MS / 1000} s; giving up`);
        break;
      }
      backoff = Math.min(backoff * 2, 10_000);
    } else {
      backoff = 500;
    }
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, backoff);
    });
    wake = undefined;
  }
  rmSync(h.pidFile, { force: true });
  stamp('exit');
  return 0;
}
