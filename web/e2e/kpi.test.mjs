// Browser test of the key figures and the map's readability (issue 17):
// the real `zhilu demo` on loopback, Debian's chromium via playwright-core
// (set-up as in console.test.mjs).
//
//   cd web && ZHILU_BIN=../target/debug/zhilu ZHILU_CHROMIUM=/usr/bin/chromium node --test e2e/kpi.test.mjs
//
// Checks: the KPI panel shows exactly what `GET /api/kpi` answers (read
// with the page's own session); the legend has a symbol per object kind
// and a switch per layer, and a layer switched off disappears from the
// canvas and from clicks; a speed-limit sign's value fits inside its disc
// and the canvas at 1366×768 (a "100" included); the corridor fills the
// map's width; a click a few pixels beside a small marker still hits it.
// Screenshots at 1366×768 and 1920×1080 go to e2e/artifacts/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { LAUNCH_ARGS } from "./probe.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, "..", process.env.ZHILU_BIN ?? "../target/debug/zhilu");
const CHROMIUM = process.env.ZHILU_CHROMIUM ?? "/usr/bin/chromium";
const ART = join(here, "artifacts");
mkdirSync(ART, { recursive: true });

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
    s.on("error", rej);
  });
}

let demo;
let url;
let browser;
let dir;
const demoLog = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "zhilu-kpi-e2e-"));
  const port = await freePort();
  // The scripted morning from 05:40: fog a few simulated minutes later,
  // with speed limits on the signs.
  demo = spawn(BIN, ["demo", "--speed", "30", "--start", "05:40", "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${join(dir, "demo.db")}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`demo did not start:\n${demoLog.join("")}`)), 120_000);
    demo.stdout.on("data", (b) => {
      const s = b.toString();
      demoLog.push(s);
      const m = s.match(/on (http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    demo.stderr.on("data", (b) => demoLog.push(b.toString()));
    demo.on("exit", (c) => rej(new Error(`demo exited ${c}:\n${demoLog.join("")}`)));
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGINT");
  writeFileSync(join(ART, "kpi-demo.log"), demoLog.join(""));
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
});

async function open(viewport) {
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !/404/.test(m.text())) errors.push(m.text());
  });
  await page.goto(url);
  await page.getByLabel(/用户名|User name/).fill("demo");
  await page.getByLabel(/密码|Password/).fill("demo");
  await page.getByRole("button", { name: /登录|Log in/ }).click();
  await page.waitForSelector(".conn.ok", { timeout: 30_000 });
  await page.waitForFunction(() => window.__zhilu.perf.firstLiveDraw > 0, null, { timeout: 30_000 });
  return { page, errors };
}

/** `GET path` with the page's own session. */
const apiGet = (page, path) =>
  page.evaluate(async (p) => {
    const s = JSON.parse(sessionStorage.getItem("zhilu.session"));
    const r = await fetch(p, { headers: { authorization: `Bearer ${s.token}` } });
    if (!r.ok) throw new Error(`${p}: ${r.status}`);
    return r.json();
  }, path);

const nextFrame = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

test("the KPI panel shows what GET /api/kpi answers", async () => {
  const { page, errors } = await open({ width: 1366, height: 768 });
  await page.locator(".kpi td[data-kpi-link]").first().waitFor({ timeout: 30_000 });
  // Travel times appear once a tick's state exists.
  await page.waitForFunction(() => document.querySelectorAll('.kpi td[data-travel]:not([data-travel=""])').length > 0, null, { timeout: 60_000 });
  const min = (s) => (s == null ? "—" : (s / 60).toFixed(1));
  let last = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    // The panel reloads, then the test asks the API: the same tick, unless
    // one closed in between (then again).
    await page.evaluate(() => window.__zhilu.kpi.load());
    const api = await apiGet(page, "/api/kpi");
    const shown = await page.evaluate(() => {
      const q = (s) => document.querySelector(`.kpi [data-kpi="${s}"]`)?.textContent ?? null;
      return {
        at: window.__zhilu.kpi.kpi?.at_ms ?? null,
        links: [...document.querySelectorAll(".kpi td[data-kpi-link]")].map((td) => ({
          key: td.dataset.kpiLink,
          tt: td.querySelector(".tt")?.textContent,
          delay: td.querySelector(".delay")?.textContent ?? null,
        })),
        congested: { up: q("congested:up"), down: q("congested:down") },
        events: ["critical", "major", "minor", "info"].map((k) => q(`events:${k}`)),
        devices: ["offline", "faulty", "unheard"].map((k) => q(`devices:${k}`)),
        pending: q("pending:proposals"),
        rowNames: [...document.querySelectorAll(".kpi tbody th")].map((th) => th.textContent),
      };
    });
    if (shown.at !== api.at_ms) {
      last = `tick ${shown.at} ≠ ${api.at_ms}`;
      continue;
    }
    // The demo corridor: 黄村, 礼贤, 固安, 牛驼 — three links each way.
    assert.equal(api.links.length, 6);
    assert.deepEqual(shown.rowNames, ["黄村–礼贤", "礼贤–固安", "固安–牛驼"]);
    const problems = [];
    for (const l of api.links) {
      const s = shown.links.find((x) => x.key === `${l.direction}:${l.from}:${l.to}`);
      if (!s) problems.push(`link ${l.direction} ${l.from}→${l.to} not shown`);
      else {
        if (s.tt !== min(l.travel_s)) problems.push(`${s.key}: ${s.tt} ≠ ${min(l.travel_s)}`);
        const d = l.delay_s ? `+${min(l.delay_s)}` : null;
        if (s.delay !== d) problems.push(`${s.key} delay: ${s.delay} ≠ ${d}`);
      }
    }
    for (const c of api.congestion) {
      if (shown.congested[c.direction] !== c.congested_km.toFixed(1)) problems.push(`congestion ${c.direction}: ${shown.congested[c.direction]} ≠ ${c.congested_km}`);
    }
    const sev = ["critical", "major", "minor", "info"].map((k) => api.events[k]);
    shown.events.forEach((txt, i) => {
      if (!txt || !txt.endsWith(` ${sev[i]}`)) problems.push(`events ${i}: ${txt} ≠ ${sev[i]}`);
    });
    [api.devices.offline, api.devices.faulty, api.devices.unheard].forEach((n, i) => {
      if (!shown.devices[i]?.endsWith(` ${n}`)) problems.push(`devices ${i}: ${shown.devices[i]} ≠ ${n}`);
    });
    if (shown.pending !== String(api.pending.proposals)) problems.push(`pending ${shown.pending} ≠ ${api.pending.proposals}`);
    if (problems.length === 0) {
      // Live figures: travel times known on every link of the demo.
      assert.ok(api.links.every((l) => l.travel_s > 0 && l.free_flow_s > 0), JSON.stringify(api.links));
      assert.ok(api.devices.total > 0);
      // In English: the panel's own words translated (only the road book's
      // names stay Chinese).
      await page.locator("button.lang").click();
      await page.locator(".kpi h3", { hasText: "Key figures" }).waitFor();
      const en = await page.locator(".kpi").innerText();
      const names = new Set(api.links.flatMap((l) => [l.from_name, l.to_name]));
      let rest = en;
      for (const n of names) rest = rest.split(n).join("");
      assert.doesNotMatch(rest, /[\u4e00-\u9fff]/, rest);
      await page.screenshot({ path: join(ART, "kpi-1366x768-en.png") });
      assert.deepEqual(errors, []);
      await page.close();
      return;
    }
    last = problems.join("; ");
  }
  assert.fail(`the panel never matched GET /api/kpi: ${last}`);
});

test("legend, layer switches, readable signs, fit and clicks that hit", async () => {
  const { page, errors } = await open({ width: 1366, height: 768 });
  // A symbol per object kind, a switch per layer.
  const legend = page.locator(".legend");
  assert.equal(await legend.locator(".sym").count(), 12);
  assert.equal(await legend.locator("input[data-layer]").count(), 7);
  assert.match(await legend.textContent(), /危化品车/);

  // The corridor fills the map's width, clear of the panels over it.
  await page.waitForFunction(() => window.__zhilu.kpi.kpi != null);
  await page.locator(".zfit").click();
  await nextFrame(page);
  const fit = await page.evaluate(() => ({ box: window.__zhilu.map.corridorBox(), insets: window.__zhilu.map.insets() }));
  const { box } = fit;
  assert.ok(box.right - box.left >= 0.85 * box.w, `corridor ${Math.round(box.right - box.left)} px of ${box.w}`);
  assert.ok(box.top >= fit.insets.top && box.bottom <= box.h - fit.insets.bottom, JSON.stringify(fit));

  // The panel folds away and back.
  await page.locator(".kpi-toggle").click();
  assert.equal(await page.locator(".kpi table").count(), 0);
  assert.equal(await page.locator(".kpi-toggle").getAttribute("aria-expanded"), "false");
  await page.locator(".kpi-toggle").click();
  await page.locator(".kpi table").waitFor();
  await nextFrame(page);

  // A "100" on a sign fits its disc at full view on 1366×768 (it read "0").
  const sign = await page.evaluate(() => {
    const { model, map } = window.__zhilu;
    const id = model.road.vsl[0].id;
    const d = model.devices.get(id) ?? { device: id, online: true };
    model.devices.set(id, { ...d, state: { action: "speed_limit", value: 100 } });
    map.invalidate();
    return id;
  });
  await nextFrame(page);
  const labels = await page.evaluate(() => window.__zhilu.map.signLabels);
  const hundred = labels.find((l) => l.id === sign);
  assert.ok(hundred, `no label drawn for ${sign}: ${JSON.stringify(labels)}`);
  assert.equal(hundred.text, "100");
  for (const l of labels) {
    // The text box inside the disc (1 px of ring each side) and the canvas.
    assert.ok(l.left >= l.x - l.r + 1 && l.left + l.width <= l.x + l.r - 1, `"${l.text}" ${l.width} px in a disc of ${2 * l.r}`);
    assert.ok(l.top >= l.y - l.r && l.top + l.height <= l.y + l.r, JSON.stringify(l));
    assert.ok(l.left >= 0 && l.top >= 0 && l.left + l.width <= box.w && l.top + l.height <= box.h, JSON.stringify(l));
  }
  // The digits are drawn: dark pixels inside the white disc, across the text's width.
  const dark = await page.evaluate((l) => {
    const cv = document.querySelector(".map-canvas");
    const dpr = cv.width / cv.clientWidth;
    const img = cv.getContext("2d").getImageData(Math.floor(l.left * dpr), Math.floor(l.top * dpr), Math.ceil(l.width * dpr), Math.ceil(l.height * dpr));
    const cols = new Set();
    for (let i = 0; i < img.data.length; i += 4) {
      if (img.data[i] + img.data[i + 1] + img.data[i + 2] < 200) cols.add(((i / 4) % img.width) / img.width);
    }
    // Dark columns in the left, middle and right thirds: "1", "0", "0".
    return [0, 1, 2].map((k) => [...cols].some((c) => c >= k / 3 && c < (k + 1) / 3));
  }, hundred);
  assert.deepEqual(dark, [true, true, true]);
  await page.screenshot({ path: join(ART, "kpi-1366x768.png") });

  // A click 8 px beside a weather station (drawn 5 px wide) selects it
  // (moving vehicles and events off, so that none passes by in between).
  await page.evaluate(() => Object.assign(window.__zhilu.map.layers, { vehicles: false, events: false }));
  await nextFrame(page);
  const ws = await page.evaluate(() => {
    const w = window.__zhilu.model.road.weather[0];
    return { id: w.id, at: window.__zhilu.map.markerAt({ type: "device", id: w.id, kind: "weather" }) };
  });
  assert.ok(ws.at, "weather station drawn");
  const cv = await page.locator(".map-canvas").boundingBox();
  await page.mouse.click(cv.x + ws.at.x + 8, cv.y + ws.at.y);
  assert.equal(await page.evaluate(() => window.__zhilu.map.selected?.id), ws.id);
  // A fog-light zone is hit anywhere along it, not only at its middle.
  const zone = await page.evaluate(() => {
    const { map, model } = window.__zhilu;
    const z = model.road.fog_lights[0];
    for (const f of [0.2, 0.3, 0.7, 0.8, 0.4, 0.6]) {
      const p = map.pt(z.from_m + (z.to_m - z.from_m) * f, 0);
      if (!map.picks.some((k) => k.f.id !== z.id && Math.hypot(k.x - p.x, k.y - p.y) < 16)) return { id: z.id, x: p.x, y: p.y };
    }
    return null;
  });
  assert.ok(zone, "a clear point on the fog-light zone");
  await page.mouse.click(cv.x + zone.x, cv.y + zone.y + 2);
  assert.equal(await page.evaluate(() => window.__zhilu.map.selected?.id), zone.id);
  await page.evaluate(() => Object.assign(window.__zhilu.map.layers, { vehicles: true, events: true }));

  // A layer switched off disappears: the sign's white disc is gone from the
  // canvas and the sign can no longer be clicked.
  const at = await page.evaluate((id) => window.__zhilu.map.markerAt({ type: "device", id, kind: "vsl" }), sign);
  const pixel = () =>
    page.evaluate((p) => {
      const cv = document.querySelector(".map-canvas");
      const dpr = cv.width / cv.clientWidth;
      return [...cv.getContext("2d").getImageData(Math.round(p.x * dpr), Math.round((p.y - p.r + 4) * dpr), 1, 1).data.slice(0, 3)];
    }, at);
  assert.deepEqual(await pixel(), [255, 255, 255], "the disc is white");
  await legend.locator('input[data-layer="signs"]').uncheck();
  await nextFrame(page);
  assert.notDeepEqual(await pixel(), [255, 255, 255], "the disc is gone");
  assert.equal(await page.evaluate((id) => window.__zhilu.map.markerAt({ type: "device", id, kind: "vsl" }), sign), null);
  assert.deepEqual(await page.evaluate(() => window.__zhilu.map.signLabels), []);
  await legend.locator('input[data-layer="signs"]').check();
  await nextFrame(page);
  assert.ok(await page.evaluate((id) => window.__zhilu.map.markerAt({ type: "device", id, kind: "vsl" }), sign));

  // Events: wait for one (the fog), then switch the layer off.
  await page.waitForFunction(() => window.__zhilu.model.events.size > 0, null, { timeout: 180_000 });
  await nextFrame(page);
  const evId = await page.evaluate(() => [...window.__zhilu.model.events.keys()][0]);
  assert.ok(await page.evaluate((id) => window.__zhilu.map.markerAt({ type: "event", id }), evId));
  await legend.locator('input[data-layer="events"]').uncheck();
  await nextFrame(page);
  assert.equal(await page.evaluate((id) => window.__zhilu.map.markerAt({ type: "event", id }), evId), null);
  await legend.locator('input[data-layer="events"]').check();

  // 1920×1080: the view refits to the larger panel.
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.waitForFunction(() => window.__zhilu.map.corridorBox().w > 1400);
  await nextFrame(page);
  const big = await page.evaluate(() => window.__zhilu.map.corridorBox());
  assert.ok(big.right - big.left >= 0.85 * big.w, JSON.stringify(big));
  await page.screenshot({ path: join(ART, "kpi-1920x1080.png") });

  // A 3840×2160 wall: the numbers grow with the panel and still fit their discs.
  await page.setViewportSize({ width: 3840, height: 2160 });
  await page.waitForFunction(() => window.__zhilu.map.corridorBox().w > 3000);
  await page.evaluate((id) => {
    const { model, map } = window.__zhilu;
    model.devices.set(id, { ...model.devices.get(id), state: { action: "speed_limit", value: 100 } });
    map.invalidate();
  }, sign);
  await nextFrame(page);
  const wall = (await page.evaluate(() => window.__zhilu.map.signLabels)).find((l) => l.id === sign);
  assert.ok(wall.height >= 16, `text ${wall.height} px high on the wall`);
  assert.ok(wall.left >= wall.x - wall.r + 1 && wall.left + wall.width <= wall.x + wall.r - 1, JSON.stringify(wall));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a high-density screen: clicks still hit (screen px, not device px)", async () => {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 }, deviceScaleFactor: 2 });
  await page.goto(url);
  await page.getByLabel(/用户名|User name/).fill("demo");
  await page.getByLabel(/密码|Password/).fill("demo");
  await page.getByRole("button", { name: /登录|Log in/ }).click();
  await page.waitForFunction(() => window.__zhilu?.perf.firstLiveDraw > 0, null, { timeout: 30_000 });
  await page.evaluate(() => Object.assign(window.__zhilu.map.layers, { vehicles: false, events: false }));
  await nextFrame(page);
  const cv = await page.locator(".map-canvas").boundingBox();
  // Weather stations with no other marker within 20 px (where markers
  // crowd, the nearest edge wins, as it should).
  const lone = await page.evaluate(() => {
    const { map, model } = window.__zhilu;
    return model.road.weather
      .map((w) => w.id)
      .filter((id) => {
        const at = map.markerAt({ type: "device", id, kind: "weather" });
        return at && !map.picks.some((p) => p.f.id !== id && Math.hypot(p.x - at.x, p.y - at.y) < 20);
      });
  });
  assert.ok(lone.length > 0, "a weather station stands alone");
  for (const w of lone) {
    const at = await page.evaluate((id) => window.__zhilu.map.markerAt({ type: "device", id, kind: "weather" }), w);
    await page.mouse.click(cv.x + at.x - 7, cv.y + at.y + 3);
    assert.equal(await page.evaluate(() => window.__zhilu.map.selected?.id), w);
  }
  await page.close();
});

test("GET /api/kpi/history gives travel times per bucket for the period", async () => {
  const { page } = await open({ width: 1366, height: 768 });
  await page.waitForFunction(() => (window.__zhilu.kpi.history?.buckets.length ?? 0) > 0 || window.__zhilu.model.state, null, { timeout: 30_000 });
  const h = await apiGet(page, "/api/kpi/history");
  assert.equal(h.links.length, 6);
  assert.deepEqual(h.directions, ["up", "down"]);
  assert.ok(h.buckets.length > 0, "buckets of the demo's readings");
  assert.ok(h.buckets.every((b) => b.travel_s.length === 6 && b.congested_km.length === 2));
  assert.ok(h.buckets.some((b) => b.travel_s.some((t) => t > 0)));
  // The panel follows the time–space diagram's period.
  await page.locator(".ts-hours").fill("2");
  await page.locator(".ts-show").click();
  await page.waitForFunction(() => {
    const h = window.__zhilu.kpi.history;
    return h && h.to_ms - h.from_ms === 2 * 3600_000;
  }, null, { timeout: 15_000 });
  assert.equal(await page.locator(".kpi-spark").count(), 2);
  await page.close();
});
