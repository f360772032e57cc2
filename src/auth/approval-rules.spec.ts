import { approvalRefusal, ApprovalFacts, ApproverFacts, carryOutRefusal, readsFullPii } from './approval-rules';

const t = (s: number) => new Date(Date.UTC(2026, 10, 30, 12, 0, s));
const request = (over: Partial<ApprovalFacts> = {}): ApprovalFacts => ({
  requestedByKeyId: 'alice',
  createdAt: t(10),
  expiresAt: t(50),
  approvedByKeyId: null,
  consumedAt: null,
  ...over,
});
const approver = (over: Partial<ApproverFacts> = {}): ApproverFacts => ({
  keyId: 'bob',
  role: 'admin',
  revoked: false,
  createdAt: t(1),
  ancestors: [],
  ...over,
});

const alice = { keyId: 'alice', ancestors: [] as string[] };

describe('approval rules', () => {
  it('lets an older, unrelated admin key approve a pending request in time', () => {
    expect(approvalRefusal(request(), approver(), alice, ['admin'], t(20))).toBeNull();
    expect(approvalRefusal(request(), approver({ ancestors: ['carol', 'dave'] }), alice, ['admin'], t(20))).toBeNull();
  });

  it.each([
    ['the same key', approver({ keyId: 'alice' }), /key that made it/],
    ['a key created by the requester', approver({ ancestors: ['alice'] }), /created by the requesting key/],
    ['a key created by a key the requester created', approver({ ancestors: ['carol', 'alice'] }), /created by/],
    ['a key created at the same instant as the request', approver({ createdAt: t(10) }), /older than the request/],
    ['a key created after the request', approver({ createdAt: t(11) }), /older than the request/],
    ['a revoked key', approver({ revoked: true }), /revoked/],
    ['a key of another role', approver({ role: 'compliance' }), /role admin/],
    ['a finance key', approver({ role: 'finance' }), /role admin/],
  ])('refuses %s', (_what, who, reason) => {
    expect(approvalRefusal(request(), who, alice, ['admin'], t(20))).toMatch(reason);
  });

  it('refuses keys of one origin: a parent approving its child, siblings, cousins', () => {
    // root made from the shell → a2 (asks); root approves: its own child's request.
    const a2 = { keyId: 'a2', ancestors: ['root'] };
    const child = request({ requestedByKeyId: 'a2' });
    expect(approvalRefusal(child, approver({ keyId: 'root' }), a2, ['admin'], t(20))).toMatch(
      /created the requesting key/,
    );
    // root → s1, s2: s1 asks, s2 approves.
    const s1 = { keyId: 's1', ancestors: ['root'] };
    expect(
      approvalRefusal(
        request({ requestedByKeyId: 's1' }),
        approver({ keyId: 's2', ancestors: ['root'] }),
        s1,
        ['admin'],
        t(20),
      ),
    ).toMatch(/same key/);
    // root → x → c1 and root → y → c2: cousins.
    const c1 = { keyId: 'c1', ancestors: ['x', 'root'] };
    expect(
      approvalRefusal(
        request({ requestedByKeyId: 'c1' }),
        approver({ keyId: 'c2', ancestors: ['y', 'root'] }),
        c1,
        ['admin'],
        t(20),
      ),
    ).toMatch(/same key/);
    // Another shell-made root's key may approve.
    expect(
      approvalRefusal(
        request({ requestedByKeyId: 'c1' }),
        approver({ keyId: 'b2', ancestors: ['bob'] }),
        c1,
        ['admin'],
        t(20),
      ),
    ).toBeNull();
  });

  it('refuses expired, already approved or carried-out requests', () => {
    expect(approvalRefusal(request(), approver(), alice, ['admin'], t(50))).toMatch(/expired/);
    expect(approvalRefusal(request({ approvedByKeyId: 'erin' }), approver(), alice, ['admin'], t(20))).toMatch(
      /already/,
    );
    expect(approvalRefusal(request({ consumedAt: t(30) }), approver(), alice, ['admin'], t(20))).toMatch(/carried out/);
  });

  it('lets only the requester carry out an approved request, once, in time', () => {
    const approved = request({ approvedByKeyId: 'bob' });
    expect(carryOutRefusal(approved, 'alice', t(20))).toBeNull();
    expect(carryOutRefusal(approved, 'bob', t(20))).toMatch(/only the key that made the request/);
    expect(carryOutRefusal(request(), 'alice', t(20))).toMatch(/not approved/);
    expect(carryOutRefusal(approved, 'alice', t(50))).toMatch(/expired/);
    expect(carryOutRefusal({ ...approved, consumedAt: t(30) }, 'alice', t(40))).toMatch(/already/);
  });

  it('names the roles whose keys read personal data in full', () => {
    expect(readsFullPii('compliance')).toBe(true);
    expect(['client', 'finance', 'admin'].map((r) => readsFullPii(r as never))).toEqual([false, false, false]);
  });
});
