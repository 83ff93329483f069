// Child-process measurement: wall time, per-line timestamps and the child's peak RSS.
// Peak RSS comes from GNU time (/usr/bin/time -f %M, the kernel's ru_maxrss of that process)
// when it exists, otherwise from polling /proc/<pid>/status VmHWM. CPU time (user + system, of the
// process and the children it waited for: %U %S) only with GNU time.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GNU_TIME = '/usr/bin/time';
const hasGnuTime = existsSync(GNU_TIME);

function vmhwmKb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs cmd; resolves { code, wallMs, peakRssMb, cpuS, stdout, lines: [{t, mono, stream, text}] } where t is
 * ms since spawn when the line arrived (mono: the same instant in CLOCK_MONOTONIC seconds), and cpuS the user + system CPU seconds (NaN without GNU
 * time). `wrap`: a command prefix (e.g. perf record …) run inside the measurement. Rejects only on
 * spawn failure; check `code`.
 */
export function measure(cmd, args, { env = process.env, cwd, timeoutMs = 15 * 60_000, wrap = [] } = {}) {
  if (wrap.length) {
    args = [...wrap.slice(1), cmd, ...args];
    cmd = wrap[0];
  }
  return new Promise((resolve, reject) => {
    let tmp;
    let file = cmd;
    let argv = args;
    if (hasGnuTime) {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'llava-bench-'));
      file = GNU_TIME;
      argv = ['-f', '%M %U %S', '-o', path.join(tmp, 'rss'), cmd, ...args];
    }
    const t0 = performance.now();
    const child = spawn(file, argv, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let stdout = '';
    let polled = 0;
    const poll = hasGnuTime ? undefined : setInterval(() => { polled = Math.max(polled, vmhwmKb(child.pid)); }, 20);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    for (const stream of ['stdout', 'stderr']) {
      let buf = '';
      child[stream].setEncoding('utf8');
      child[stream].on('data', (d) => {
        const t = performance.now() - t0;
        // CLOCK_MONOTONIC seconds (libuv's hrtime), the clock of `perf record -k CLOCK_MONOTONIC`
        const mono = Number(process.hrtime.bigint()) / 1e9;
        if (stream === 'stdout') stdout += d;
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push({ t, mono, stream, text: buf.slice(0, i) });
          buf = buf.slice(i + 1);
        }
      });
      child[stream].on('end', () => { if (buf) lines.push({ t: performance.now() - t0, mono: Number(process.hrtime.bigint()) / 1e9, stream, text: buf }); });
    }
    child.on('error', (e) => { clearTimeout(timer); if (poll) clearInterval(poll); reject(e); });
    child.on('close', (code, signal) => {
      const wallMs = performance.now() - t0;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      let kb = polled;
      let cpuS = NaN;
      if (tmp) {
        try {
          // the last line (a killed child adds "Command terminated by signal" lines before it)
          const txt = readFileSync(path.join(tmp, 'rss'), 'utf8').trim().split('\n');
          const [rss, user, sys] = txt[txt.length - 1].split(' ').map(Number);
          kb = rss || 0;
          cpuS = user + sys;
        } catch { /* killed before time wrote it */ }
        rmSync(tmp, { recursive: true, force: true });
      }
      resolve({ code: code ?? (signal ? 128 : 1), signal, wallMs, peakRssMb: kb / 1024, cpuS, stdout, lines });
    });
  });
}

/**
 * Environment for every measured child: the same OpenMP thread count and the same libgomp spin
 * policy for all tools. GOMP_SPINCOUNT (default here: 100, libgomp's own "throttled" value) matters
 * on a shared machine: with libgomp's default (300000 spins at each barrier) a thread whose partner
 * was descheduled spins away its time slice; llama-mtmd-cli's decode measured 2.3 tokens/s with the
 * default and 15.8 with GOMP_SPINCOUNT=100 in the same minute (perf: 81 % of samples in libgomp).
 * `spin: null` leaves the user's environment as it is.
 */
export function childEnv(threads, extra = {}, spin = currentSpin) {
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), ...extra };
  if (spin !== null && spin !== undefined && env.GOMP_SPINCOUNT === undefined) env.GOMP_SPINCOUNT = String(spin);
  return env;
}
let currentSpin = '100';
export function setSpinCount(v) {
  currentSpin = v;
}
