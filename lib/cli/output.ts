/** Terminal plumbing for the CLI: answers go to stdout, progress and diagnostics to stderr. */
import cliProgress from 'cli-progress';
import { isLlavaMedError } from '../errors.js';

let quiet = false;

/** `--quiet`: progress bars and progress lines become no-ops. */
export function setQuiet(q: boolean): void {
  quiet = q;
}

/** One progress/diagnostic line on stderr (not with --quiet). */
export function note(line: string): void {
  if (!quiet) process.stderr.write(`${line}\n`);
}

/** A mistake in how the command was called: printed as one line and a hint, like commander's own. */
export class UsageError extends Error {}

export function progressBar(label: string, unit = ''): { update(done: number, total: number, extra?: string): void; stop(): void } {
  if (quiet) return { update() {}, stop() {} };
  if (!process.stderr.isTTY) {
    let lastPct = -1;
    return {
      update(done, total) {
        const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
        if (pct >= lastPct + 10 || done === total) {
          lastPct = pct;
          process.stderr.write(`${label}: ${pct}%\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total}${unit} | ETA {eta_formatted} {extra}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, extra = '') {
      if (!started) {
        bar.start(total, done, { extra });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { extra });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Prints an error for a person and sets the exit code; typed errors show their code. */
export function reportError(e: unknown): void {
  if (e instanceof UsageError) {
    process.stderr.write(`llava-med: ${e.message}\n(add --help for usage)\n`);
    process.exitCode = 2;
    return;
  }
  if (isLlavaMedError(e)) process.stderr.write(`llava-med: ${e.code}: ${e.message}\n`);
  else process.stderr.write(`llava-med: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = isLlavaMedError(e, 'ERR_ABORTED') ? 130 : 1;
}

/**
 * An AbortSignal that fires on Ctrl-C (SIGINT) or SIGTERM (kill, systemd, container stop), so native
 * work stops cleanly and temp files are removed. A second signal of the same kind kills at once.
 */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort(new Error('interrupted')));
  process.once('SIGTERM', () => ac.abort(new Error('terminated')));
  return ac.signal;
}
