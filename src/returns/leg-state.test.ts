import { LEG_TRANSITIONS, OPEN_LEG_STATUSES } from './leg-state';
import { LegStatus } from './refund-leg.entity';

describe('refund leg state table', () => {
  const all = Object.keys(LEG_TRANSITIONS) as LegStatus[];

  it('money that went back is final: approved and paid_in_cash have no way out', () => {
    expect(LEG_TRANSITIONS.approved).toEqual([]);
    expect(LEG_TRANSITIONS.paid_in_cash).toEqual([]);
  });

  it('an unknown leg ends only in a confirmed outcome (never queued again: that would send a second refund)', () => {
    expect([...LEG_TRANSITIONS.unknown].sort()).toEqual(['approved', 'failed']);
  });

  it('a queued leg (never sent) is sent, or failed by a person — never approved without a terminal or acquirer answer', () => {
    expect([...LEG_TRANSITIONS.queued].sort()).toEqual(['failed', 'pending']);
  });

  it('a failed leg ends only by being paid in cash', () => {
    expect(LEG_TRANSITIONS.failed).toEqual(['paid_in_cash']);
  });

  it('every open status has a way to a final one', () => {
    const reachesFinal = (s: LegStatus, seen = new Set<LegStatus>()): boolean => {
      if (LEG_TRANSITIONS[s].length === 0) return true;
      seen.add(s);
      return LEG_TRANSITIONS[s].some((n) => !seen.has(n) && reachesFinal(n, seen));
    };
    for (const s of all) expect(reachesFinal(s)).toBe(true);
    for (const s of OPEN_LEG_STATUSES) expect(LEG_TRANSITIONS[s].length).toBeGreaterThan(0);
  });
});
