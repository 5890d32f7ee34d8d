import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/columns';

/** `goods` are counted on shelves; a `seat` is a unique item of an event (on hand 1). */
export type SkuKind = 'goods' | 'seat';

/** A sellable item with its stock level. available = onHand − reserved, never negative. */
@Entity('sku')
export class Sku {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  sku: string;

  @Column({ type: 'varchar', length: 200 })
  name: string;

  @Column({ name: 'price_fen', type: 'bigint', transformer: bigintAsNumber })
  priceFen: number;

  @Column({ type: 'varchar', length: 8, default: 'goods' })
  kind: SkuKind;

  @Column({ name: 'on_hand', type: 'bigint', default: 0, transformer: bigintAsNumber })
  onHand: number;

  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  reserved: number;

  /** EAN-13 on the pack, check digit verified when it is set (src/inventory/barcodes.ts). */
  @Column({ type: 'varchar', length: 14, nullable: true })
  barcode: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintAsNumber })
  createdAt: number;

  @Column({ name: 'updated_at', type: 'bigint', transformer: bigintAsNumber })
  updatedAt: number;
}
