/**
 * llama.cpp, ggml and mtmd log through one process-wide callback (native/log.cpp). Several
 * LlavaMed instances may each want their logger, so this module keeps a set and installs
 * the native callback only while at least one is registered: with none, native logs are
 * dropped and nothing reaches stdout or stderr.
 */
import type { NativeAddon } from './native-types.js';

/** Severity of a native log line. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Receives llama.cpp/ggml/mtmd log lines at or above the chosen level; an exception it throws is ignored. */
export type Logger = (level: LogLevel, message: string) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const sinks = new Map<Logger, LogLevel>();

function install(addon: NativeAddon): void {
  if (sinks.size === 0) {
    addon.setLogger(null, 'error');
    return;
  }
  let min: LogLevel = 'error';
  for (const lv of sinks.values()) if (ORDER[lv] < ORDER[min]) min = lv;
  addon.setLogger((level, text) => {
    const lv = (level in ORDER ? level : 'info') as LogLevel;
    for (const [fn, want] of sinks) {
      if (ORDER[lv] < ORDER[want]) continue;
      try {
        fn(lv, text);
      } catch {
        // A throwing logger must not break native logging for everyone else.
      }
    }
  }, min);
}

/** Registers a logger; returns a function that removes it. */
export function addLogger(addon: NativeAddon, fn: Logger, minLevel: LogLevel = 'info'): () => void {
  sinks.set(fn, minLevel);
  install(addon);
  return () => {
    sinks.delete(fn);
    install(addon);
  };
}
