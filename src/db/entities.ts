import { ApiKey } from '../auth/api-key.entity';
import { AuditEntry } from '../audit/audit.entity';
import { IdempotencyRecord } from '../idempotency/idempotency.entity';
import { Sku } from '../inventory/sku.entity';
import { StockMovement } from '../inventory/movement.entity';
import { Order } from '../orders/order.entity';
import { OrderLine } from '../orders/order-line.entity';
import { Payment } from '../payments/payment.entity';
import { ticketingEntities } from '../ticketing';
import { stockCountEntities } from '../stock-count';
import { returnsEntities } from '../returns/entities';

export const entities = [ApiKey, AuditEntry, IdempotencyRecord, Sku, StockMovement, Order, OrderLine, Payment, ...ticketingEntities, ...stockCountEntities, ...returnsEntities];
