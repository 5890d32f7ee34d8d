/**
 * A lane's receipt printer (the cash drawer hangs off it). The domain asks two things: how is it
 * (DLE EOT), and print these bytes. A printer that is away or out of paper is a state, not an error:
 * the print queue waits for it.
 */
export type PrinterState = 'ready' | 'paper_out' | 'offline' | 'away';

export interface PrinterStatus {
  state: PrinterState;
  /** The roll is near its end: still prints, but someone should change it. */
  paperNearEnd: boolean;
}

export interface Printer {
  readonly lane: string;
  status(): Promise<PrinterStatus>;
  /** Sends a job; resolves once the bytes are on the line. Rejects when the line is down. */
  print(job: Buffer): Promise<void>;
  /** Whether this process has the line open. Another instance may hold the device; then it prints, not us. */
  isConnected(): boolean;
  close(): Promise<void>;
}
