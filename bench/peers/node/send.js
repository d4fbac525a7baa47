// npm web-push, used as its README shows: sendNotification(subscription, payload, options)
// with vapidDetails, TTL, urgency and topic. Concurrency: a pool of C sends in flight.
// Prints one JSON line per concurrency. The receiver's certificate comes from NODE_EXTRA_CA_CERTS.
//
//   NODE_EXTRA_CA_CERTS=target/bench-data/push/cert.pem \
//     node bench/peers/node/send.js target/bench-data/push/workload.json 64,128,256
'use strict';

const fs = require('fs');
const webpush = require('web-push');

async function run(workload, concurrency) {
  const options = {
    vapidDetails: {
      subject: workload.vapid.subject,
      publicKey: workload.vapid.public_key,
      privateKey: workload.vapid.private_key,
    },
    TTL: workload.ttl,
    urgency: workload.urgency,
    topic: workload.topic,
  };
  const subs = workload.subscriptions.map((s) => ({ endpoint: s.endpoint, keys: s.keys }));
  let next = 0;
  let sent = 0;
  let failed = 0;
  let firstError = null;
  const started = process.hrtime.bigint();
  async function worker() {
    while (next < subs.length) {
      const sub = subs[next++];
      try {
        const res = await webpush.sendNotification(sub, workload.payload, options);
        if (res.statusCode === 201) sent++; else failed++;
      } catch (err) {
        failed++;
        if (!firstError) firstError = String(err && (err.body || err.message || err));
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (firstError) console.error(`first failure: ${firstError}`);
  console.log(JSON.stringify({
    sender: 'web-push (npm)', concurrency, messages: subs.length, sent, failed, seconds,
    rate: sent / seconds,
  }));
}

async function main() {
  const [file, list = '64,128,256'] = process.argv.slice(2);
  const workload = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const c of list.split(',').map(Number)) await run(workload, c);
}

main().catch((err) => { console.error(err); process.exit(1); });
