/** JSON lines on stderr. Callers never pass a full card number: only the terminal's masked CN exists here. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const PAN = /\b(\d{6})\d{3,9}(\d{4})\b/g;

/** Masks anything that looks like a full card number, in case a peer ever sends one. */
export const maskPan = (s: string): string => s.replace(PAN, (_m, a: string, b: string) => `${a}******${b}`);

export function jsonLogger(quiet = process.env.POS_LOG === 'silent'): Logger {
  const write = (level: string, msg: string, fields?: Record<string, unknown>) => {
    if (quiet && level !== 'error') return;
    process.stderr.write(maskPan(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields })) + '\n');
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
