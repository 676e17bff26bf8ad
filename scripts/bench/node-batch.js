// The original design's batch creation (mikrotik-integration-v2, section
// 10.1): chunks of 50 `add`s in parallel, Promise.allSettled, then a fixed
// 1000 ms sleep before the next chunk. For scripts/bench/create-batch.sh only.
//
//   node node-batch.js HOST PORT USER PASSWORD FILE.csv
// FILE.csv is the create-batch file (service,name,password,profile,valid_hours,batch_id).
'use strict';
const fs = require('fs');
const { RouterOSAPI } = require('node-routeros');

const [host, port, user, password, file] = process.argv.slice(2);
const BATCH_SIZE = 50;
const SLEEP_MS = 1000;

(async () => {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').slice(1);
  const users = lines.map((l) => {
    const [, name, pw, profile, hours, batch] = l.split(',');
    return { name, pw, profile, comment: `VOUCHER_SYSTEM|${batch}|||${hours}||||` };
  });
  const conn = new RouterOSAPI({ host, port: parseInt(port, 10), user, password, timeout: 60 });
  await conn.connect();
  const started = process.hrtime.bigint();
  let failed = 0;
  for (let i = 0; i < users.length; i += BATCH_SIZE) {
    const batch = users.slice(i, i + BATCH_SIZE);
    const results = await Promise.allSettled(batch.map((u) => conn.write('/ip/hotspot/user/add', [
      `=name=${u.name}`, `=password=${u.pw}`, `=profile=${u.profile}`, `=comment=${u.comment}`,
    ])));
    failed += results.filter((r) => r.status === 'rejected').length;
    // Wait between batches to avoid overwhelming Mikrotik
    await new Promise((resolve) => setTimeout(resolve, SLEEP_MS));
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(JSON.stringify({ created: users.length - failed, failed, wall_ms: Math.round(ms) }) + '\n');
  conn.close();
})().catch((e) => {
  console.error('node-batch:', e && e.message ? e.message : e);
  process.exit(1);
});
