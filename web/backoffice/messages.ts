/**
 * Back-office-only words (coupons, recount), typed like @common/i18n: a key missing from English is
 * a type error. Kept here so the lane's shared messages do not grow with screens it never shows.
 */
import { locale } from '@common/i18n';

const zh = {
  couponCode: '券码',
  couponKind: '类型',
  amountOff: '立减',
  percentOff: '折扣',
  amountYuan: '减免金额（元）',
  percent: '折扣比例（%）',
  minSubtotalYuan: '最低消费（元，可空）',
  couponSkus: '适用商品（逗号分隔，空=全部）',
  validFrom: '生效时间',
  validTo: '失效时间',
  maxUses: '可用次数（空=不限）',
  used: '已用',
  reservedUses: '占用中',
  remaining: '剩余',
  unlimited: '不限',
  allSkus: '全部商品',
  newCoupon: '新建优惠券',
  editCoupon: '编辑优惠券',
  edit: '编辑',
  value: '面额',
  minSubtotal: '最低消费',
  window: '有效期',
  saved: '已保存',
  needAmount: '请输入有效的减免金额（元）',
  needPercent: '请输入 0–100 的折扣比例',
  needMin: '最低消费须为金额（元）',
  recountQty: '复盘数量',
  recounted: '已更新实盘数',
};
type Messages = typeof zh;
const en: Messages = {
  couponCode: 'Code',
  couponKind: 'Kind',
  amountOff: 'Amount off',
  percentOff: 'Percent off',
  amountYuan: 'Amount off (yuan)',
  percent: 'Percent off (%)',
  minSubtotalYuan: 'Minimum spend (yuan, optional)',
  couponSkus: 'SKUs (comma separated, empty = all)',
  validFrom: 'Valid from',
  validTo: 'Valid to',
  maxUses: 'Max uses (empty = unlimited)',
  used: 'Used',
  reservedUses: 'Reserved',
  remaining: 'Remaining',
  unlimited: 'Unlimited',
  allSkus: 'All SKUs',
  newCoupon: 'New coupon',
  editCoupon: 'Edit coupon',
  edit: 'Edit',
  value: 'Value',
  minSubtotal: 'Minimum spend',
  window: 'Valid',
  saved: 'Saved',
  needAmount: 'Enter an amount off in yuan',
  needPercent: 'Enter a percent between 0 and 100',
  needMin: 'The minimum spend is an amount in yuan',
  recountQty: 'Recounted qty',
  recounted: 'Counted figure updated',
};

export type OfficeMessageKey = keyof Messages;
const all = { zh, en };
export const tb = (k: OfficeMessageKey): string => all[locale.value][k];
