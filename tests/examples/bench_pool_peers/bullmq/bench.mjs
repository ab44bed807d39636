// BullMQ side of keel's bench_pool_peers (tests/examples/bench_pool_peers/main.rs drives it).
// Usage: node bench.mjs <redis-url> <jobs> <concurrency> <producers>
// Prints `ready` once the queue and the worker are connected, waits for `go` on stdin, then
// adds <jobs> no-op jobs (ids job-0 … from <producers> concurrent loops, one add at a time, as
// keel's dispatchers do) to one worker of concurrency <concurrency>, and prints one JSON line:
// {"elapsed_ms": …, "cpu_us": …, "completed": …} measured from `go` until the worker recorded
// the last completion (its `completed` event follows moveToCompleted).
import { Queue, Worker } from 'bullmq';
import { createInterface } from 'node:readline';

const [url, jobsArg, concurrencyArg, producersArg] = process.argv.slice(2);
const jobs = Number(jobsArg);
const concurrency = Number(concurrencyArg);
const producers = Number(producersArg);
if (!url || !(jobs > 0) || !(concurrency > 0) || !(producers > 0)) {
  console.error('usage: node bench.mjs <redis-url> <jobs> <concurrency> <producers>');
  process.exit(2);
}
const u = new URL(url);
// BullMQ requires maxRetriesPerRequest: null on a worker's connection (blocking commands).
const connection = { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null };

const queue = new Queue('bench', { connection });
let completed = 0;
let allDone;
const done = new Promise((resolve) => { allDone = resolve; });
const worker = new Worker('bench', async () => {}, { connection, concurrency });
worker.on('completed', () => { if (++completed === jobs) allDone(); });
worker.on('failed', (job, err) => { console.error(`job ${job?.id} failed: ${err}`); process.exit(1); });
worker.on('error', (err) => { console.error(`worker error: ${err}`); });
await queue.waitUntilReady();
await worker.waitUntilReady();

const lines = createInterface({ input: process.stdin });
console.log('ready');
for await (const line of lines) { if (line.trim() === 'go') break; }

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const adders = [];
for (let p = 0; p < producers; p++) {
  adders.push((async () => {
    for (let i = p; i < jobs; i += producers) await queue.add('noop', 'x', { jobId: `job-${i}` });
  })());
}
await Promise.all(adders);
await done;
const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ elapsed_ms: elapsedMs, cpu_us: cpu.user + cpu.system, completed }));
await worker.close();
await queue.close();
process.exit(0);
