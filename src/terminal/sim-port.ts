/**
 * Runs a TerminalSimulator on a serial port (a pty end, a null-modem end): opens it, feeds it, and
 * reopens it after a scripted `close` so the lane comes back as a real terminal's would.
 */
import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from '@serialport/bindings-interface';
import { SimulatorOptions, TerminalSimulator } from './ecr-simulator';

export interface SimOnPort {
  simulator: TerminalSimulator;
  close(): Promise<void>;
}

export async function runSimulatorOnPort(
  binding: BindingInterface,
  path: string,
  opts: SimulatorOptions & { baudRate?: number; reopenAfterMs?: number; exitOnClose?: boolean },
): Promise<SimOnPort> {
  let port: SerialPortStream | null = null;
  let stopped = false;
  const simulator = new TerminalSimulator(
    {
      write: (b) => {
        port?.write(b);
      },
    },
    {
      ...opts,
      onClose: () => {
        const p = port;
        port = null;
        simulator.link.lineDown();
        p?.close(() => {
          if (opts.exitOnClose) return opts.onClose?.();
          setTimeout(() => {
            if (!stopped) void open().then(() => simulator.link.lineUp());
          }, opts.reopenAfterMs ?? 300);
        });
      },
    },
  );
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const p = new SerialPortStream({ binding, path, baudRate: opts.baudRate ?? 9600, autoOpen: false });
      p.on('data', (d: Buffer) => simulator.feed(d));
      p.on('error', () => undefined);
      p.open((err) => (err ? reject(err) : ((port = p), resolve())));
    });
  await open();
  return {
    simulator,
    close: async () => {
      stopped = true;
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
    },
  };
}
