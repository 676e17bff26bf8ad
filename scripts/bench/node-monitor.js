// The original design's monitoring cycle (MikrotikMonitor.monitorUsers in
// ../shared/design), with node-routeros, for scripts/bench.sh only: the
// same four list reads, profile filter, Maps and comment parsing, no
// database. Prints one JSON line: mean CPU per steady cycle and peak RSS.
//
//   node node-monitor.js HOST PORT USER PASSWORD CYCLES
'use strict';
const { RouterOSAPI } = require('node-routeros');

const [host, port, user, password, cyclesArg] = process.argv.slice(2);
const cycles = parseInt(cyclesArg || '20', 10);

function parseComment(comment) {
  const data = { system: null };
  if (!comment) return data;
  const parts = comment.split('|');
  if (parts[0] === 'VOUCHER_SYSTEM' || parts[0] === 'PPPOE_SYSTEM') {
    data.system = parts[0];
    data.batch_id = parts[1];
    data.price_sell = parts[2];
    data.price_cost = parts[3];
    if (parts[0] === 'VOUCHER_SYSTEM') {
      data.valid_hours = parts[4];
      data.vendor_id = parts[5];
      data.created_date = parts[6];
      data.created_by = parts[7];
      data.first_login_at = parts[8];
      data.expires_at = parts[9];
    } else {
      data.customer_id = parts[4];
      data.subscription_id = parts[5];
    }
  }
  return data;
}

const activeUsers = new Map();
const userSessionInfo = new Map();
let events = 0;

function track(users, active, key, type) {
  const activeMap = new Map(active.map((a) => [a[key], a]));
  for (const u of users) {
    const isActive = activeMap.has(u.name);
    const info = activeMap.get(u.name) || {};
    const commentData = parseComment(u.comment || '');
    if (isActive && !activeUsers.has(u.name)) events++;
    else if (!isActive && activeUsers.has(u.name)) events++;
    if (isActive) {
      activeUsers.set(u.name, { type, data: u, info, commentData, lastSeen: new Date() });
      userSessionInfo.set(u.name, {
        bytesIn: parseInt(info['bytes-in']) || 0,
        bytesOut: parseInt(info['bytes-out']) || 0,
        uptime: info.uptime || 0,
      });
    } else {
      activeUsers.delete(u.name);
    }
  }
}

async function cycle(conn) {
  // RouterOS queries are literal, so `*voucher*` is matched here.
  const [hu, ha, ps, pa] = await Promise.all([
    conn.write('/ip/hotspot/user/print', ['=.proplist=.id,name,profile,comment,disabled']),
    conn.write('/ip/hotspot/active/print', ['=.proplist=.id,user,address,mac-address,login-by,uptime,bytes-in,bytes-out']),
    conn.write('/ppp/secret/print', ['=.proplist=.id,name,profile,comment,disabled']),
    conn.write('/ppp/active/print', ['=.proplist=.id,name,service,caller-id,address,uptime,session-id']),
  ]);
  track(hu.filter((u) => (u.profile || '').includes('voucher')), ha, 'user', 'hotspot');
  track(ps.filter((u) => (u.profile || '').includes('pppoe')), pa, 'name', 'pppoe');
}

(async () => {
  const conn = new RouterOSAPI({ host, port: parseInt(port, 10), user, password, timeout: 60 });
  await conn.connect();
  await cycle(conn); // first cycle: everyone comes online
  const samples = [];
  for (let i = 0; i < cycles; i++) {
    const before = process.cpuUsage();
    await cycle(conn);
    const d = process.cpuUsage(before);
    samples.push((d.user + d.system) / 1000);
  }
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(JSON.stringify({
    steady_cycle_cpu_ms: Math.round(mean * 10) / 10,
    peak_rss_kib: process.resourceUsage().maxRSS,
    tracked: activeUsers.size,
    events,
  }));
  conn.close();
})().catch((e) => {
  console.error('node-monitor:', e && e.message ? e.message : e);
  process.exit(1);
});
