// The zran TS inflater vs node:zlib's gunzip on the same gzip files (CPU time, same process), and
// how many deflate block starts are byte-aligned (where zlib's inflateRaw + dictionary could resume).
// Usage: node dist/bench/codec/zran-inflate.js FILE.gz... [env RUNS=3]
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { gunzipAll, Inflater } from '../../src/format/zran/inflate.js';

const RUNS = Number(process.env.RUNS ?? 3);
for (const f of process.argv.slice(2)) {
  const gz = readFileSync(f);
  let ts = 0;
  let z = 0;
  for (let i = 0; i < RUNS; i++) {
    let t = process.cpuUsage();
    gunzipAll(gz);
    ts = process.cpuUsage(t).user / 1000;
    t = process.cpuUsage();
    gunzipSync(gz);
    z = process.cpuUsage(t).user / 1000;
  }
  let given = false;
  let blocks = 0;
  let aligned = 0;
  const inf = new Inflater({ gzip: true, name: f, fill: () => (given ? null : ((given = true), gz)), onBlock: (cp) => void (blocks++, cp.bit % 8 === 0 && aligned++) });
  while (!inf.done) {
    inf.keepFrom = inf.produced;
    inf.step(inf.produced + (1 << 20));
  }
  console.log(`${f}: ${(inf.produced / 1048576).toFixed(1)} MiB out; last of ${RUNS} runs: TS ${ts.toFixed(0)} ms, zlib ${z.toFixed(0)} ms, ${(ts / z).toFixed(2)}x; ${aligned}/${blocks} block starts byte-aligned`);
}
