// `/ip/hotspot/user/print` with node-routeros, each row printed as a JSON
// line, as `mikrotik-edge api` does: for scripts/bench.sh only.
//
//   node node-print.js HOST PORT USER PASSWORD
'use strict';
const { RouterOSAPI } = require('node-routeros');

const [host, port, user, password] = process.argv.slice(2);
(async () => {
  const conn = new RouterOSAPI({ host, port: parseInt(port, 10), user, password, timeout: 60 });
  await conn.connect();
  const rows = await conn.write('/ip/hotspot/user/print');
  const out = [];
  for (const r of rows) out.push(JSON.stringify(r));
  process.stdout.write(out.join('\n') + '\n');
  conn.close();
})().catch((e) => {
  console.error('node-print:', e && e.message ? e.message : e);
  process.exit(1);
});
