/**
 * The order code printed as a barcode on every receipt, so a lane can scan a receipt for a return:
 * the order's UUID as a 40-digit number. Digits go into Code128 set C two a symbol, which keeps the
 * barcode inside an 80 mm roll at a module width scanners read well (36 UUID characters in set B
 * would need half that width). A scanner types the digits; `orderIdOfCode` turns them back.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function orderCodeOf(orderId: string): string {
  if (!UUID.test(orderId)) throw new Error(`not an order id: ${orderId}`);
  return BigInt(`0x${orderId.replace(/-/g, '')}`)
    .toString()
    .padStart(40, '0');
}

export function isOrderCode(code: string): boolean {
  return /^\d{40}$/.test(code) && BigInt(code) < 1n << 128n;
}

export function orderIdOfCode(code: string): string {
  if (!isOrderCode(code)) throw new Error(`not an order code: ${code}`);
  const hex = BigInt(code).toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
