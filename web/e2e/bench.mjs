// Console benchmark (not part of the test command): a 500-km corridor with a
// detector station every kilometre in both directions (≈ 1,000 segments)
// and 5,000 vehicles reporting every tick, fed live into `zhilu serve`
// through the HTTP ingest; the console in Debian's chromium measures the
// first paint with live segments and the frame rate while panning, at the
// whole-corridor view and zoomed in. Prints JSON (docs/BENCHMARKS.md).
//
//   (cd web && ZHILU_BIN=../target/release/zhilu node e2e/bench.mjs)

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { LAUNCH_ARGS, paintTimes, panFrameRate } from "./probe.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, "..", process.env.ZHILU_BIN ?? "../target/release/zhilu");
const STATIONS = Number(process.env.STATIONS ?? 500);
const VEHICLES = Number(process.env.VEHICLES ?? 5000);
const LANES = 3;

const dir = mkdtempSync(join(tmpdir(), "zhilu-console-bench-"));
const db = `sqlite://${join(dir, "bench.db")}`;

// A winding centre line, a vertex every 5 km.
const geometry = [];
const lenM = (STATIONS + 1) * 1000;
for (let s = 0; s <= lenM; s += 5000) {
  const u = s / lenM;
  geometry.push([s, 114.0 + 3.0 * u + 0.05 * Math.sin(u * 40), 38.0 + 1.5 * u + 0.08 * Math.cos(u * 25)]);
}
if (geometry[geometry.length - 1][0] !== lenM) geometry.push([lenM, 117.0, 39.5]);
let toml = `[road]\nid = "BENCH"\nname = "基准走廊"\ntz = "+08:00"\ndirections = ["up", "down"]\ngeometry = ${JSON.stringify(geometry)}\nlanes = ${LANES}\nspeed_limit_kmh = 120\n`;
const dets = [];
for (let i = 1; i <= STATIONS; i++) {
  for (const [d, off] of [["up", 0], ["down", 500]]) {
    const id = `B${String(i).padStart(4, "0")}${d === "up" ? "U" : "D"}`;
    dets.push(id);
    toml += `\n[[detector]]\nid = "${id}"\ndirection = "${d}"\nstake_m = ${i * 1000 + off}\n`;
  }
}
for (let i = 5; i < STATIONS; i += 10) {
  toml += `\n[[vsl]]\nid = "S${i}U"\ndirection = "up"\nstake_m = ${i * 1000 + 200}\n`;
  toml += `\n[[vms]]\nid = "M${i}D"\ndirection = "down"\nstake_m = ${i * 1000 + 700}\n`;
}
writeFileSync(join(dir, "ROAD.toml"), toml);

function freePort() {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

const port = await freePort();
const url = `http://127.0.0.1:${port}`;
execFileSync(BIN, ["user", "add", "bench", "--role", "operator", "--database", db], { input: "bench-password-1\n" });
const server = spawn(BIN, ["serve", "--road", join(dir, "ROAD.toml"), "--database", db, "--listen", `127.0.0.1:${port}`], {
  stdio: ["ignore", "pipe", "inherit"],
});
await new Promise((res) => server.stdout.on("data", (b) => /serving on/.test(b.toString()) && res()));

const login = await (
  await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: "bench-password-1" }),
  })
).json();
const auth = { authorization: `Bearer ${login.token}`, "content-type": "text/csv" };

// Vehicles: stake and carriageway, moving at their own speeds.
const lonlatAt = (s) => {
  let i = 0;
  while (i + 2 < geometry.length && geometry[i + 1][0] <= s) i++;
  const [s0, x0, y0] = geometry[i];
  const [s1, x1, y1] = geometry[i + 1];
  const f = (s - s0) / (s1 - s0);
  const x = x0 + (x1 - x0) * f;
  const y = y0 + (y1 - y0) * f;
  // ~15 m to the side of the carriageway (right of increasing stake = up)
  const dx = (x1 - x0) * Math.cos((y0 * Math.PI) / 180);
  const dy = y1 - y0;
  const n = Math.hypot(dx, dy);
  return [x, y, dx / n, dy / n];
};
const veh = Array.from({ length: VEHICLES }, (_, i) => ({
  id: `京A${String(i).padStart(5, "0")}`,
  cls: i % 25 === 0 ? "hazmat" : i % 3 === 0 ? "truck" : "car",
  s: Math.random() * (lenM - 2000) + 1000,
  up: i % 2 === 0,
  v: 70 + Math.random() * 40,
}));

const t0 = Date.UTC(2026, 10, 24, 0, 0, 0); // 08:00 local
let tick = 0;
const iso = (ms) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 19) + "+08:00";
async function feedTick() {
  tick++;
  const ms = t0 + tick * 20_000;
  const time = iso(ms);
  let obs = "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n";
  for (const [k, id] of dets.entries()) {
    const slow = (k + tick) % 97 < 8;
    for (let l = 1; l <= LANES; l++) {
      const sp = slow ? 25 + ((k * 7 + l) % 20) : 85 + ((k * 13 + l * 5 + tick) % 30);
      obs += `${time},${id},${l},20,${slow ? 4 : 9},${sp},${slow ? 28 : 9}\n`;
    }
  }
  let pos = "time,vehicle,class,lat,lon,speed_kmh,heading_deg\n";
  for (const v of veh) {
    v.s += (v.up ? 1 : -1) * (v.v / 3.6) * 20;
    if (v.s < 1000 || v.s > lenM - 1000) v.up = !v.up;
    const [x, y, tx, ty] = lonlatAt(v.s);
    const side = v.up ? 1 : -1;
    const lon = x + (ty * side * 15) / (111_320 * Math.cos((y * Math.PI) / 180));
    const lat = y - (tx * side * 15) / 111_320;
    const heading = ((Math.atan2(tx, ty) * 180) / Math.PI + (v.up ? 0 : 180) + 360) % 360;
    pos += `${time},${v.id},${v.cls},${lat.toFixed(6)},${lon.toFixed(6)},${v.v.toFixed(1)},${heading.toFixed(0)}\n`;
  }
  for (const [path, body] of [
    ["observations", obs],
    ["positions", pos],
  ]) {
    const r = await fetch(`${url}/api/ingest/${path}`, { method: "POST", headers: auth, body });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  }
}
for (let i = 0; i < 3; i++) await feedTick();
let feeding = true;
const feeder = (async () => {
  while (feeding) {
    const a = Date.now();
    await feedTick();
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - a))));
  }
})();

const browser = await chromium.launch({
  executablePath: process.env.ZHILU_CHROMIUM ?? "/usr/bin/chromium",
  args: LAUNCH_ARGS,
});
const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
await page.goto(url);
await page.getByLabel(/用户名|User name/).fill("bench");
await page.getByLabel(/密码|Password/).fill("bench-password-1");
await page.getByRole("button", { name: /登录|Log in/ }).click();
await page.waitForFunction(
  (n) => window.__zhilu?.model?.vehicles?.size >= n && window.__zhilu.model.state?.directions?.length === 2,
  VEHICLES,
  { timeout: 60_000 },
);
await page.reload();
const paint = await paintTimes(page);
await page.waitForFunction((n) => window.__zhilu.model.vehicles.size >= n, VEHICLES, { timeout: 60_000 });

const pan = (label) => panFrameRate(page, 5000, label);
// PAUSE_FEED=1: stop feeding while measuring, to separate the page's own
// drawing cost from the CPU that the server and the feeder take on this
// 2-core machine.
if (process.env.PAUSE_FEED === "1") {
  feeding = false;
  await feeder;
}

const whole = await pan("whole corridor");
await page.evaluate(() => {
  window.__zhilu.map.hazmatOnly = true;
});
const wholeHazmat = await pan("whole corridor, hazmat trucks only");
await page.evaluate(() => {
  window.__zhilu.map.hazmatOnly = false;
});
// Zoom in on the middle of the corridor, about 25 km across.
await page.evaluate((mid) => {
  const m = window.__zhilu.map;
  m.focus(mid);
  const w = document.querySelector(".map-canvas").getBoundingClientRect().width;
  m.zoom(w / 25_000 / m.scale);
}, (STATIONS * 1000) / 2);
const zoomed = await pan("zoomed in (~25 km across)");
await page.screenshot({ path: join(here, "artifacts", "bench.png") });
const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
if (feeding) {
  feeding = false;
  await feeder;
}
await browser.close();
server.kill("SIGINT");
console.log(JSON.stringify({ stations: STATIONS * 2, lanes: STATIONS * 2 * LANES, ticks_fed: tick, ...paint, js_heap_mb: heap && Math.round(heap / 1048576), runs: [whole, wholeHazmat, zoomed] }, null, 2));
