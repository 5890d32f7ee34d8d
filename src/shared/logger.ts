/** JSON lines on stderr through pino. Callers never pass a full card number: only the terminal's masked CN exists here. */
import pino from 'pino';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const PAN = /\b(\d{6})\d{3,9}(\d{4})\b/g;

/** Masks anything that looks like a full card number, in case a peer ever sends one. */
export const maskPan = (s: string): string => s.replace(PAN, (_m, a: string, b: string) => `${a}******${b}`);

export function jsonLogger(
  quiet = process.env.POS_LOG === 'silent',
  destination: pino.DestinationStream = pino.destination(2),
): Logger {
  const p = pino(
    {
      level: quiet ? 'error' : process.env.POS_LOG_LEVEL || 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // The last line of defence: every serialised line is masked, whatever field a PAN hid in.
      hooks: { streamWrite: maskPan },
    },
    destination,
  );
  return {
    info: (m, f) => p.info(f ?? {}, m),
    warn: (m, f) => p.warn(f ?? {}, m),
    error: (m, f) => p.error(f ?? {}, m),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
