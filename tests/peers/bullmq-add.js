// bullmq-add.js - peer_bullmq_add_per_s: BullMQ's Queue.add under aq-bench create's load shape
//
//   node tests/peers/bullmq-add.js --port N [--conns C] [--pipeline P] [--count N]
//                                  [--seconds S] [--size B] [--autopipelining 0|1]
//
// C Queue objects on one queue name, each with its own ioredis connection to
// redis-server on 127.0.0.1:N, and on each P Queue.add calls in flight: a
// sliding window (a new add starts as soon as one ends), the shape of
// `aq-bench create` (C connections x P TASK_CREATEs in flight). Queue.add,
// not addBulk: addBulk sends its jobs in one MULTI, a batch that waits for
// its slowest job, while aq-bench keeps every window place busy. Each job is
// a plain job (no consumer runs, so it stays waiting) whose data is ~300
// bytes of JSON, like a task's. ioredis writes each add's EVALSHA as soon
// as it is called, so the adds are pipelined on the connection; with
// --autopipelining 1 (the default) ioredis also gathers the commands of one
// event-loop tick into one write.
//
// Prints `bench peer_bullmq_add_per_s <n> jobs/s` (adds that resolved, over
// the time from the first add to the last answer) and, on stderr, this
// process's CPU per add: the client is part of the product here (BullMQ's
// work is split between its Lua scripts in Redis and this process).
'use strict';

const path = require('path');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const { Queue } = require(path.join(__dirname, 'node_modules', 'bullmq'));

function options(argv) {
  const o = { port: 0, conns: 4, pipeline: 500, count: 200000, seconds: 10, size: 300,
              autopipelining: 1, threads: 1 };
  for (let i = 2; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in o) || i + 1 >= argv.length) {
      process.stderr.write('usage: node bullmq-add.js --port N [--conns C] [--pipeline P] ' +
                           '[--count N] [--seconds S] [--size B] [--autopipelining 0|1] ' +
                           '[--threads T]\n');
      process.exit(2);
    }
    o[name] = Number(argv[i + 1]);
  }
  return o;
}

// One thread's share: conns queues with pipeline adds in flight on each,
// until count adds or the deadline (process.hrtime, shared by the threads).
async function load(o, conns, count, deadline) {
  const queues = [];
  for (let i = 0; i < conns; i++) {
    queues.push(new Queue('aq-bench', {
      connection: { host: '127.0.0.1', port: o.port, enableAutoPipelining: !!o.autopipelining },
    }));
  }
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  const filler = 'x'.repeat(Math.max(0, o.size - 90));
  const data = { targetUrl: 'https://api.example.com/webhook', method: 'POST', body: filler };
  const r = { sent: 0, ok: 0, failed: 0, firstError: null, start: process.hrtime.bigint(), last: 0n };
  async function lane(queue) {
    while (r.sent < count && process.hrtime.bigint() < deadline) {
      r.sent++;
      try {
        await queue.add('task', data);
        r.ok++;
      } catch (e) {
        if (r.failed++ === 0) r.firstError = e.message;
      }
      r.last = process.hrtime.bigint();
    }
  }
  const lanes = [];
  for (const queue of queues)
    for (let i = 0; i < o.pipeline; i++) lanes.push(lane(queue));
  await Promise.all(lanes);
  await Promise.all(queues.map((q) => q.close()));
  return r;
}

async function main() {
  const o = options(process.argv);
  const threads = Math.max(1, Math.min(o.threads, o.conns));
  const cpu = process.cpuUsage();
  const begin = process.hrtime.bigint();
  const deadline = begin + BigInt(Math.round(o.seconds * 1e9));
  const shares = [];
  for (let t = 0; t < threads; t++) {
    const conns = Math.floor(o.conns / threads) + (t < o.conns % threads ? 1 : 0);
    const count = Math.floor(o.count / threads) + (t < o.count % threads ? 1 : 0);
    if (threads === 1) {
      shares.push(load(o, conns, count, deadline));
      continue;
    }
    shares.push(new Promise((resolve, reject) => {
      const worker = new Worker(__filename, { workerData: { o, conns, count, deadline } });
      worker.once('message', resolve);
      worker.once('error', reject);
    }));
  }
  const results = await Promise.all(shares);
  let sent = 0, ok = 0, failed = 0, firstError = null, start = null, last = 0n;
  for (const r of results) {
    sent += r.sent, ok += r.ok, failed += r.failed;
    firstError = firstError || r.firstError;
    start = start === null || r.start < start ? r.start : start;
    last = r.last > last ? r.last : last;
  }
  const elapsed = Number(last - start) / 1e9;
  const used = process.cpuUsage(cpu);
  const usedSeconds = (used.user + used.system) / 1e6;
  if (failed)
    process.stderr.write(`bullmq-add: ${failed} of ${sent} adds failed, first: ${firstError}\n`);
  process.stderr.write(`bullmq-add: ${ok + failed} adds answered in ${elapsed.toFixed(2)} s over ` +
                       `${o.conns} connections x ${o.pipeline} in flight, ${threads} thread(s), ` +
                       `autopipelining ${o.autopipelining ? 'on' : 'off'}; node CPU ` +
                       `${(usedSeconds * 1e6 / Math.max(1, sent)).toFixed(2)} us per add, ` +
                       `${(100 * usedSeconds / Math.max(elapsed, 1e-9)).toFixed(0)}% of one core\n`);
  if (ok > 0 && elapsed > 0) {
    process.stdout.write(`bench peer_bullmq_add_per_s ${Math.round(ok / elapsed)} jobs/s\n`);
    return 0;
  }
  return 1;
}

if (isMainThread) {
  main().then((rc) => process.exit(rc), (e) => {
    process.stderr.write(`bullmq-add: ${e.stack || e}\n`);
    process.exit(1);
  });
} else {
  const { o, conns, count, deadline } = workerData;
  load(o, conns, count, deadline).then((r) => parentPort.postMessage(r));
}
