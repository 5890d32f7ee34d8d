import { SimProgram, simProgram } from './pty';

/** `pos sim-printer` as its own process on `path`, writing receipts to `outDir`, with its control API. */
export function simPrinterProcess(path: string, outDir: string): Promise<SimProgram> {
  return simProgram(['sim-printer', '--port', path, '--out', outDir, '--control', '127.0.0.1:0']);
}
