/**
 * Issue 5, part 4: a soak. Many sagas over many sessions, with 3 worker
 * SIGKILLs and 1 server restart while they run (tests/durability/soakScenario.ts).
 *
 * Default size: 40 sagas over 8 sessions. HV_SOAK_FULL=1: 200 sagas over 20
 * sessions. HV_SOAK_SAGAS / HV_SOAK_SESSIONS set any size.
 */
import { Lab } from './harness';
import { runSoak } from './soakScenario';

const FULL = process.env.HV_SOAK_FULL === '1';
const SAGAS = Number(process.env.HV_SOAK_SAGAS || (FULL ? 200 : 40));
const SESSIONS = Number(process.env.HV_SOAK_SESSIONS || (FULL ? 20 : 8));

describe(`durability: soak — ${SAGAS} sagas over ${SESSIONS} sessions, 3 worker kills and 1 server restart`, function () {
  this.timeout(FULL ? 1_800_000 : 600_000);
  const lab = Lab.forSuite();

  it('ends every saga in its expected state with one side effect per key, and every audit chain verifies', async () => {
    await runSoak(lab, {
      name: 'soak',
      sagas: SAGAS,
      sessions: SESSIONS,
      chaos: [
        { kind: 'kill', at: 0.15 },
        { kind: 'kill', at: 0.35 },
        { kind: 'restart', at: 0.55 },
        { kind: 'kill', at: 0.75 },
      ],
    });
  });
});
