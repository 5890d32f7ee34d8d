/**
 * What each capability hands to the app: its entities (for the data source, through db/registry so
 * db/ imports none of them). Routes are mounted in app.ts and by each extension (src/extensions.ts).
 * A new capability with entities adds one line here.
 */
import { registerEntities } from './db/registry';
import { ApiKey } from './auth/api-key.entity';
import { AuditEntry } from './audit/audit.entity';
import { IdempotencyRecord } from './idempotency/idempotency.entity';
import { Sku } from './inventory/sku.entity';
import { StockMovement } from './inventory/movement.entity';
import { Order } from './orders/order.entity';
import { OrderLine } from './orders/order-line.entity';
import { Payment } from './payments/payment.entity';
import { ticketingEntities } from './ticketing';
import { stockCountEntities } from './stock-count';
import { returnsEntities } from './returns/entities';

export const capabilityEntities = {
  auth: [ApiKey],
  audit: [AuditEntry],
  idempotency: [IdempotencyRecord],
  inventory: [Sku, StockMovement],
  orders: [Order, OrderLine],
  payments: [Payment],
  ticketing: ticketingEntities,
  stockCount: stockCountEntities,
  returns: returnsEntities,
};

export const entities = Object.values(capabilityEntities).flat();

registerEntities(entities);
