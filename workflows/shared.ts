/**
 * The library modules every workflow run of a worker thread shares (worker/worker.ts: the bundle's
 * `preloadModules`). The SDK's reusable V8 context evaluates a run's modules afresh, for isolation; zod's and
 * @noble/hashes' took a third of a saga's module evaluation (issue 20). They keep no state of a run's: zod's
 * config is set only here, before the freeze, and a saga asks zod for no compiled parser per parse
 * (src/core/common.ts), not by config. The SDK deep-freezes what is preloaded, so whatever either caches
 * lazily in a module-level object is read here first. The hypervisor's own modules are never shared: their
 * schemas cache lazily on themselves.
 */
import { z } from 'zod';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

// What zod sets up lazily in module-level objects, which the freeze would make unwritable: whether `new Function`
// works (cached on first read), and its default locale and memoizer (in its config, at the first schema built).
void z.core.util.allowsEval.value;
void z.object({ warm: z.array(z.string()) }).safeParse({ warm: [] }, { jitless: true });
// Used, so the bundler keeps them here (the package declares no side effects): src/core/hash.ts's digest.
void bytesToHex(sha256(utf8ToBytes('')));
