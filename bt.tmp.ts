import { buildTemporalServer } from './worker/temporalServer';
buildTemporalServer().then((t) => console.log(JSON.stringify(t)), (e) => { console.error(e); process.exit(1); });
