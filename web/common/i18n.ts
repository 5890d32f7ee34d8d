/**
 * 中文 by default, English by a switch. One typed messages object: a key missing from English
 * is a type error, not a blank on a cashier's screen.
 */
import { computed, ref } from 'vue';
import { zhCN, dateZhCN, enUS, dateEnUS } from 'naive-ui';

const zh = {
  appLane: '收银台', appOffice: '后台管理', language: 'English', signIn: '登录', signOut: '退出', apiKey: 'API 密钥',
  keyHintLane: '请输入本收银台的收银员密钥', keyHintOffice: '请输入后台或管理员密钥', badKey: '密钥无效或权限不足',
  lane: '收银台', scan: '扫码或输入商品编码后回车', search: '按名称搜索', basketEmpty: '请扫描商品', sku: '商品编码', name: '名称',
  qty: '数量', unitPrice: '单价', amount: '金额', remove: '删除', total: '应收', discount: '优惠', subtotal: '小计',
  coupon: '优惠券', couponHint: '输入券码后回车', couponApplied: '将在结算时使用优惠券', notFound: '未找到该商品',
  payCash: '现金 F2', payCard: '银行卡 F3', couponKey: '优惠券 F4', returnKey: '退货 F6', newSale: '新交易 F8', reprint: '重印小票',
  shift: '交班', back: '返回 Esc', tendered: '实收金额（元）', confirmCash: '确认收款', changeDue: '找零', due: '待付',
  cardTitle: '银行卡支付', cardWaiting: '请在终端上完成操作', approved: '支付成功', declined: '交易被拒绝', tryAgain: '重试',
  otherTender: '改用其他方式', unknownTitle: '支付结果未知', unknownBody: '终端未给出结果。商品仍被保留，不得交给顾客。',
  unknownWait: '继续等待结果', unknownCash: '改收现金', unknownCashConfirm: '确认顾客的银行卡很可能没有被扣款，并改收现金？如果银行卡实际已扣款，系统会自动退款。',
  supervisor: '呼叫主管', supervisorCalled: '已记录：请主管到收银台处理', saleComplete: '交易完成', orderCode: '订单号',
  stockShort: '库存不足', orderExpired: '订单已失效，请重新开始', receipt: '小票', returns: '退货', scanReceipt: '扫描小票上的订单条码',
  returnUnits: '退货数量', refund: '退款', refundDone: '退款完成', openShift: '开班', closeShift: '交班结账', floatYuan: '备用金（元）',
  countedYuan: '清点现金（元）', expectedCash: '应有现金', countedCash: '实点现金', overShort: '长短款', shiftOpen: '当班中', noShift: '未开班', noShiftOpen: '本收银台未开班：请先开班（输入备用金）再收款',
  paidFen: '已付', status: '状态', working: '处理中…', cancel: '取消', confirm: '确认', error: '出错了', notAvailable: '该功能暂不可用',
  held: '挂账资金', stock: '库存', counts: '盘点', recon: '对账', shifts: '班次', seats: '座位', audit: '审计',
  heldTitle: '未确认的银行卡支付', age: '时长', lastAnswer: '最近结果', nextCheck: '下次查询', evidence: '凭证', resolve: '处理',
  outcome: '结果', note: '备注（必填）', submit: '提交', owedBack: '待退还顾客的款项', ageing: '挂账时长分布', payment: '支付', order: '订单',
  onHand: '在库', reserved: '预留', available: '可售', holders: '占用订单', movements: '库存流水', onHandChart: '在库趋势', receive: '入库',
  catalog: '商品目录', price: '价格（元）', save: '保存', kind: '类型', ref: '单据', actor: '操作人', time: '时间', more: '加载更多',
  openCount: '开始盘点', uploadCsv: '拖入或点击上传 CSV（sku,counted）', variance: '差异', expected: '账面', counted: '实盘',
  movedSinceCount: '盘后有变动', heldByPayments: '支付挂起占用', approve: '审核过账', shrinkage: '损耗（按商品）', export: '导出 CSV',
  recount: '复盘', countsList: '盘点单', runs: '对账批次', rerun: '重新对账', runRecon: '对账', items: '差异明细', acceptAcquirer: '以收单方为准',
  acceptOurs: '以本系统为准', chase: '追查', zReports: 'Z 报表', salesByTender: '每日各支付方式销售额', event: '场次', free: '空闲',
  sold: '已售', holds: '预留中的座位', expires: '到期', entityId: '对象 ID', actorId: '操作人', entity: '对象', action: '动作',
  before: '之前', after: '之后', coupons: '优惠券', searchBtn: '查询', none: '无', live: '实时', lines: '明细', close: '关闭',
  lastPrompt: '终端提示', checks: '已查询次数', terminalPrompts: '终端提示记录', reprinted: '已发送重印', printQueued: '打印机不可用：小票已排队',
};
type Messages = typeof zh;
const en: Messages = {
  appLane: 'Lane', appOffice: 'Back office', language: '中文', signIn: 'Sign in', signOut: 'Sign out', apiKey: 'API key',
  keyHintLane: "This lane's cashier key", keyHintOffice: 'A back-office or admin key', badKey: 'The key is not valid or lacks the role',
  lane: 'Lane', scan: 'Scan or type a code, then Enter', search: 'Search by name', basketEmpty: 'Scan an item', sku: 'SKU', name: 'Name',
  qty: 'Qty', unitPrice: 'Unit price', amount: 'Amount', remove: 'Remove', total: 'Total due', discount: 'Discount', subtotal: 'Subtotal',
  coupon: 'Coupon', couponHint: 'Coupon code, then Enter', couponApplied: 'The coupon is applied at payment', notFound: 'No such item',
  payCash: 'Cash F2', payCard: 'Card F3', couponKey: 'Coupon F4', returnKey: 'Return F6', newSale: 'New sale F8', reprint: 'Reprint',
  shift: 'Shift', back: 'Back Esc', tendered: 'Tendered (yuan)', confirmCash: 'Take cash', changeDue: 'Change due', due: 'Due',
  cardTitle: 'Card payment', cardWaiting: 'Follow the terminal', approved: 'Approved', declined: 'Declined', tryAgain: 'Try again',
  otherTender: 'Another tender', unknownTitle: 'Outcome unknown', unknownBody: 'The terminal gave no answer. The goods stay held and must NOT be handed over.',
  unknownWait: 'Keep waiting', unknownCash: 'Take cash instead', unknownCashConfirm: "Take cash although the card attempt is unknown? If the card was charged after all, it is refunded automatically.",
  supervisor: 'Call a supervisor', supervisorCalled: 'Noted: a supervisor is needed at this lane', saleComplete: 'Sale complete', orderCode: 'Order',
  stockShort: 'Not enough stock', orderExpired: 'The order expired; start again', receipt: 'Receipt', returns: 'Returns', scanReceipt: "Scan the receipt's order barcode",
  returnUnits: 'Units to return', refund: 'Refund', refundDone: 'Refunded', openShift: 'Open shift', closeShift: 'Close shift', floatYuan: 'Float (yuan)',
  countedYuan: 'Counted cash (yuan)', expectedCash: 'Expected cash', countedCash: 'Counted cash', overShort: 'Over/short', shiftOpen: 'Shift open', noShift: 'No shift', noShiftOpen: 'No shift is open on this lane: open one (count the float) before taking money',
  paidFen: 'Paid', status: 'Status', working: 'Working…', cancel: 'Cancel', confirm: 'Confirm', error: 'Error', notAvailable: 'Not available on this server',
  held: 'Held money', stock: 'Stock', counts: 'Stock counts', recon: 'Reconciliation', shifts: 'Shifts', seats: 'Seats', audit: 'Audit',
  heldTitle: 'Card payments not confirmed', age: 'Age', lastAnswer: 'Last answer', nextCheck: 'Next check', evidence: 'Evidence', resolve: 'Resolve',
  outcome: 'Outcome', note: 'Note (required)', submit: 'Submit', owedBack: 'Money owed back to customers', ageing: 'Ageing', payment: 'Payment', order: 'Order',
  onHand: 'On hand', reserved: 'Reserved', available: 'Available', holders: 'Held by', movements: 'Movement ledger', onHandChart: 'On hand over time', receive: 'Receive',
  catalog: 'Catalog', price: 'Price (yuan)', save: 'Save', kind: 'Kind', ref: 'Ref', actor: 'Actor', time: 'Time', more: 'Load more',
  openCount: 'Open a count', uploadCsv: 'Drop or click to upload a CSV (sku,counted)', variance: 'Variance', expected: 'Expected', counted: 'Counted',
  movedSinceCount: 'Moved since count', heldByPayments: 'Held by payments', approve: 'Approve', shrinkage: 'Shrinkage by SKU', export: 'Export CSV',
  recount: 'Recount', countsList: 'Counts', runs: 'Runs', rerun: 'Re-run', runRecon: 'Reconcile', items: 'Differences', acceptAcquirer: 'Accept acquirer',
  acceptOurs: 'Accept ours', chase: 'Chase', zReports: 'Z reports', salesByTender: 'Daily sales by tender', event: 'Event', free: 'Free',
  sold: 'Sold', holds: 'Seats on hold', expires: 'Expires', entityId: 'Entity id', actorId: 'Actor', entity: 'Entity', action: 'Action',
  before: 'Before', after: 'After', coupons: 'Coupons', searchBtn: 'Search', none: 'None', live: 'Live', lines: 'Lines', close: 'Close',
  lastPrompt: 'Terminal says', checks: 'Checks', terminalPrompts: 'Terminal prompts', reprinted: 'Reprint sent', printQueued: 'Printer unavailable: receipt queued',
};

export type MessageKey = keyof Messages;
export type Locale = 'zh' | 'en';
const all: Record<Locale, Messages> = { zh, en };

export const locale = ref<Locale>((localStorage.getItem('pos.locale') as Locale) === 'en' ? 'en' : 'zh');
export const t = (k: MessageKey): string => all[locale.value][k];
export function toggleLocale(): void {
  locale.value = locale.value === 'zh' ? 'en' : 'zh';
  localStorage.setItem('pos.locale', locale.value);
  document.documentElement.lang = locale.value === 'zh' ? 'zh-CN' : 'en';
}
export const naiveLocale = computed(() => (locale.value === 'zh' ? zhCN : enUS));
export const naiveDateLocale = computed(() => (locale.value === 'zh' ? dateZhCN : dateEnUS));
