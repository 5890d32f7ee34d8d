/**
 * A serialport binding whose ports come in crossed pairs, like two devices joined by a null-modem
 * cable: what one end writes the other reads. The embedded default runs the real driver and the
 * real simulator over it, so `npm start` exercises the same framing and link code as a pty.
 */
import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
} from '@serialport/bindings-interface';

class Wire {
  private chunks: Buffer[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  put(b: Buffer): void {
    this.chunks.push(Buffer.from(b));
    this.waiter?.();
  }

  async take(max: number): Promise<Buffer | null> {
    while (this.chunks.length === 0) {
      if (this.closed) return null;
      await new Promise<void>((r) => {
        this.waiter = r;
      });
      this.waiter = null;
    }
    const head = this.chunks[0];
    if (head.length <= max) {
      this.chunks.shift();
      return head;
    }
    this.chunks[0] = head.subarray(max);
    return head.subarray(0, max);
  }

  close(): void {
    this.closed = true;
    this.waiter?.();
  }
}

const canceled = () => Object.assign(new Error('port closed'), { canceled: true });

class NullModemPort implements BindingPortInterface {
  isOpen = true;
  constructor(
    readonly openOptions: Required<OpenOptions>,
    private readonly inbound: Wire,
    private readonly outbound: Wire,
    private readonly onClose: () => void,
  ) {}
  async close(): Promise<void> {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.inbound.close();
    this.outbound.close();
    this.onClose();
  }
  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    const chunk = await this.inbound.take(length);
    if (!chunk) {
      if (!this.isOpen) throw canceled();
      // The other end hung up: an error that is not `canceled` makes the stream report a disconnect.
      throw Object.assign(new Error('the other end of the null-modem cable closed'), { disconnected: true });
    }
    chunk.copy(buffer, offset);
    return { buffer, bytesRead: chunk.length };
  }
  async write(buffer: Buffer): Promise<void> {
    if (!this.isOpen) throw canceled();
    if (this.outbound.closed) throw new Error('the other end of the null-modem cable closed');
    this.outbound.put(buffer);
  }
  async update(): Promise<void> {}
  async set(): Promise<void> {}
  async get(): Promise<PortStatus> {
    return { cts: true, dsr: true, dcd: true };
  }
  async getBaudRate(): Promise<{ baudRate: number }> {
    return { baudRate: this.openOptions.baudRate };
  }
  async flush(): Promise<void> {}
  async drain(): Promise<void> {}
}

/** Create a pair with `pair(a, b)`, then open `a` and `b` through this binding. */
export class NullModemBinding implements BindingInterface<NullModemPort> {
  private readonly ends = new Map<string, { peer: string; wire: Wire | null }>();
  private readonly wires = new Map<string, Wire>();

  pair(a: string, b: string): void {
    this.ends.set(a, { peer: b, wire: null });
    this.ends.set(b, { peer: a, wire: null });
    this.wires.set(`${a}>${b}`, new Wire());
    this.wires.set(`${b}>${a}`, new Wire());
  }

  async list(): Promise<PortInfo[]> {
    return [...this.ends.keys()].map((path) => ({
      path,
      manufacturer: 'null-modem',
      serialNumber: undefined,
      pnpId: undefined,
      locationId: undefined,
      productId: undefined,
      vendorId: undefined,
    }));
  }

  async open(options: OpenOptions): Promise<NullModemPort> {
    const end = this.ends.get(options.path);
    if (!end) throw new Error(`no null-modem port ${options.path}`);
    const inKey = `${end.peer}>${options.path}`;
    const outKey = `${options.path}>${end.peer}`;
    // A reopened end gets fresh wires (a new cable), so a closed line can come back.
    if (this.wires.get(inKey)!.closed) this.wires.set(inKey, new Wire());
    if (this.wires.get(outKey)!.closed) this.wires.set(outKey, new Wire());
    const full: Required<OpenOptions> = {
      dataBits: 8,
      lock: true,
      stopBits: 1,
      parity: 'none',
      rtscts: false,
      xon: false,
      xoff: false,
      xany: false,
      hupcl: true,
      ...options,
    } as Required<OpenOptions>;
    return new NullModemPort(full, this.wires.get(inKey)!, this.wires.get(outKey)!, () => undefined);
  }
}
