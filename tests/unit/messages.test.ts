/**
 * The message registry (src/contract/messages.ts) against the workflows that
 * register handlers and the client that signs: every handler the session and
 * saga set has an entry of its kind, and the typed client signs every signed
 * update as the session's rule requires (issue 19, N17).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateDidKey } from '../../src/core/identity';
import { KeyRing, signingDids } from '../../src/client/keys';
import { MESSAGES, signersFor, type UpdateName } from '../../src/contract/messages';
import * as definitions from '../../workflows/definitions';

const root = path.resolve(__dirname, '..', '..', 'workflows');
const sources = fs
  .readdirSync(root, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => fs.readFileSync(path.join(root, f), 'utf8'))
  .join('\n');

describe('message registry', () => {
  it('has an entry, of the same kind, for every handler the workflows set, and a handler for every entry', () => {
    const exported = definitions as unknown as Record<string, { type: string; name: string }>;
    const names = new Set<string>();
    // Signals and queries are set one by one; the session's updates are handlers the door wires, by name.
    for (const [, ident] of sources.matchAll(/wf\.setHandler\(\s*(\w+)/g)) {
      if (ident === 'definitions') continue; // the door's wiring, below
      const def = exported[ident!];
      assert.ok(def, `${ident} is a definition of workflows/definitions.ts`);
      const m = Object.hasOwn(MESSAGES, def.name) ? MESSAGES[def.name as keyof typeof MESSAGES] : undefined;
      assert.equal(m?.kind, def.type, `${def.name}: a registry entry of kind ${def.type}`);
      names.add(def.name);
    }
    // The session's updates: the keys of its families' Handlers objects (`{ join: { check, run }, … } satisfies Handlers`).
    const families = [...sources.matchAll(/ = \{\n([\s\S]*?)\n\} satisfies Handlers;/g)].map((m) => m[1]!);
    assert.ok(families.length >= 6, 'the handler families are found');
    for (const [, name] of families.join('\n').matchAll(/^ {2}(\w+): \{$/gm)) {
      assert.equal(
        MESSAGES[name as keyof typeof MESSAGES]?.kind,
        'update',
        `${name}: a handler the door wires is a registry update`,
      );
      names.add(name!);
    }
    assert.deepEqual([...names].sort(), Object.keys(MESSAGES).sort());
  });

  it("every signature the session checks is checked by the door, under the registry's rule for that message", () => {
    const files = fs.readdirSync(path.join(root, 'session')).filter((f) => f.endsWith('.ts'));
    for (const f of files) {
      const text = fs.readFileSync(path.join(root, 'session', f), 'utf8');
      if (f !== 'door.ts')
        assert.doesNotMatch(
          text,
          /\bcheckAuth\(|\bsignedBy\b/,
          `${f} checks signatures itself instead of through the door`,
        );
      for (const [, name] of text.matchAll(/(?:acceptAuth|signaturesOf)\(ctx, '(\w+)'/g)) {
        const m = MESSAGES[name as UpdateName];
        assert.ok(
          m?.kind === 'update' && 'signers' in m && m.signers,
          `${f}: ${name} is a signed update of the registry`,
        );
      }
    }
    const door = fs.readFileSync(path.join(root, 'session', 'door.ts'), 'utf8');
    assert.match(door, /MESSAGES\[name\]\.signers/, 'the door takes the signer rule from the registry');
  });

  describe('the typed client signs as the session requires', () => {
    const k = Object.fromEntries(
      ['agent', 'sre', 'approver', 'parent', 'other'].map((n) => [n, generateDidKey()]),
    ) as Record<string, ReturnType<typeof generateDidKey>>;
    const digest = 'ab'.repeat(32);
    const requests: Partial<Record<UpdateName, [Record<string, unknown>, string[]]>> = {
      join: [{ agentDid: k.agent!.did, sigmaRaw: 0.8, delegatedBy: k.parent!.did }, [k.agent!.did, k.parent!.did]],
      leave: [{ agentDid: k.agent!.did }, [k.agent!.did]],
      vouch: [{ voucher: k.parent!.did, vouchee: k.agent!.did }, [k.parent!.did]],
      checkAction: [{ agentDid: k.agent!.did, actionId: 'draft' }, [k.agent!.did]],
      slash: [{ agentDid: k.agent!.did, reason: 'r', witnessDid: k.sre!.did }, [k.sre!.did]],
      startSaga: [
        {
          steps: [
            { actionId: 'a', agentDid: k.agent!.did },
            { actionId: 'b', agentDid: k.parent!.did },
          ],
        },
        [k.agent!.did, k.parent!.did],
      ],
      approve: [{ sagaId: 's', stepId: 'x', digest, approverDid: k.approver!.did }, [k.approver!.did]],
      reject: [{ sagaId: 's', stepId: 'x', digest, approverDid: k.approver!.did, reason: 'no' }, [k.approver!.did]],
      witness: [{ sagaId: 's', stepId: 'x', digest, witnessDid: k.sre!.did }, [k.sre!.did]],
      quarantine: [{ agentDid: k.agent!.did, sreDid: k.sre!.did, reason: 'r' }, [k.sre!.did]],
      release: [{ agentDid: k.agent!.did, sreDid: k.sre!.did }, [k.sre!.did]],
      kill: [{ agentDid: k.agent!.did, sreDid: k.sre!.did, reason: 'r' }, [k.sre!.did]],
      requestElevation: [{ agentDid: k.agent!.did, ring: 1, justification: 'j' }, [k.agent!.did]],
      approveElevation: [
        { agentDid: k.agent!.did, elevationId: 'e', digest, approverDid: k.approver!.did },
        [k.approver!.did],
      ],
      revokeElevation: [{ agentDid: k.agent!.did, byDid: k.sre!.did }, [k.sre!.did]],
      vfsWrite: [{ agentDid: k.agent!.did, path: '/a', content: 'x' }, [k.agent!.did]],
      openTurn: [{ agentDid: k.agent!.did }, [k.agent!.did]],
      appendStep: [{ sagaId: 's', agentDid: k.agent!.did, actionId: 'draft' }, [k.agent!.did]],
      endTurn: [{ sagaId: 's', agentDid: k.agent!.did }, [k.agent!.did]],
      abortTurn: [{ sagaId: 's', agentDid: k.agent!.did, reason: 'r' }, [k.agent!.did]],
    };
    const everyone = new KeyRing(Object.values(k));
    const agentOnly = new KeyRing([k.agent!]);

    for (const [name, [request, expected]] of Object.entries(requests) as [
      UpdateName,
      [Record<string, unknown>, string[]],
    ][]) {
      it(`${name}: signed by ${expected.length > 1 ? 'every DID' : 'the DID'} the session's rule names, and no other`, () => {
        const parsed = MESSAGES[name].input.parse(request);
        const rule = signersFor(name, parsed, { controllers: [], voucherOf: () => '' });
        assert.ok(rule && 'all' in rule);
        assert.deepEqual([...rule.all].sort(), [...expected].sort());
        assert.deepEqual(signingDids(everyone, name, request).sort(), [...expected].sort());
        assert.deepEqual(signingDids(agentOnly, name, request), expected.includes(k.agent!.did) ? [k.agent!.did] : []);
      });
    }

    it("activate, terminate and releaseBond: one DID, `as` or the signer's first", () => {
      for (const name of ['activate', 'terminate'] as const) {
        assert.deepEqual(signingDids(everyone, name, undefined, k.sre!.did), [k.sre!.did]);
        assert.deepEqual(signingDids(agentOnly, name, undefined), [k.agent!.did]);
      }
      assert.deepEqual(signingDids(everyone, 'releaseBond', { bondId: 'b' }, k.parent!.did), [k.parent!.did]);
      assert.deepEqual(
        signingDids(everyone, 'reportDrift', { agentDid: k.agent!.did }),
        [],
        'a drift report without its reporter is refused, not signed',
      );
      assert.deepEqual(
        signingDids(everyone, 'reportDrift', { agentDid: k.agent!.did, reporterDid: k.sre!.did }),
        [k.sre!.did],
        'the reporter signs a drift report',
      );
      assert.deepEqual(
        signingDids(everyone, 'quarantine', { agentDid: k.agent!.did }),
        [],
        'a request its schema refuses is not signed',
      );
    });
  });
});
