// End-to-end test of the operators' console in a real browser: the real
// `zhilu demo` (centre + simulator) on loopback, Debian's chromium driven
// by playwright-core. Screenshots and the measured paint/fps figures go to
// e2e/artifacts/ (kept as test artefacts; figures are recorded in
// docs/BENCHMARKS.md, never asserted as timings).
//
//   ZHILU_BIN=../target/debug/zhilu node --test e2e/
//
// Flow: log in (the stream opens with a one-use ticket) → live segments on
// the map → a fog event arrives → approve a proposed entry closure → the
// entry's confirmed state changes → English → a viewer sees no decision
// buttons → health's `degraded` in the header → keyboard reachability and
// AA contrast (axe-core) → first paint and panning frame rate.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { LAUNCH_ARGS, paintTimes, panFrameRate } from "./probe.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, "..", process.env.ZHILU_BIN ?? "../target/debug/zhilu");
const CHROMIUM = process.env.ZHILU_CHROMIUM ?? "/usr/bin/chromium";
const ART = join(here, "artifacts");
mkdirSync(ART, { recursive: true });

const LAUNCH = { executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS };

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
let dbUrl;
const demoLog = [];

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "zhilu-console-e2e-"));
  dbUrl = `sqlite://${join(dir, "demo.db")}`;
  const port = await freePort();
  // The scripted morning from 05:40: the fog bank thickens below 50 m a few
  // simulated minutes later, and entry closures are proposed.
  demo = spawn(BIN, ["demo", "--speed", "30", "--start", "05:40", "--listen", `127.0.0.1:${port}`, "--database", dbUrl], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`demo did not start:\n${demoLog.join("")}`)), 120_000);
    const onData = (b) => {
      const s = b.toString();
      demoLog.push(s);
      const m = s.match(/on (http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    };
    demo.stdout.on("data", onData);
    demo.stderr.on("data", (b) => demoLog.push(b.toString()));
    demo.on("exit", (c) => rej(new Error(`demo exited ${c}:\n${demoLog.join("")}`)));
  });
  // A read-only account beside the demo's operator (same database).
  execFileSync(BIN, ["user", "add", "watcher", "--role", "viewer", "--database", dbUrl], {
    input: "lookout-Pass-1\n",
  });
  browser = await chromium.launch(LAUNCH);
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGINT");
  writeFileSync(join(ART, "demo.log"), demoLog.join(""));
});

async function newPage(opts = {}) {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 }, ...opts });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    // /api/forecast answers 404 until the first forecast exists; anything
    // else logged as an error is a failure.
    if (m.type() === "error" && !/404/.test(m.text())) errors.push(m.text());
  });
  // No request may leave the machine: the console works offline.
  const outside = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith("data:")) outside.push(r.url());
  });
  // What the stream was opened with (a one-use ticket, never the token).
  const streams = [];
  page.on("request", (r) => {
    if (r.url().includes("/api/stream")) streams.push(r.url());
  });
  return { page, errors, outside, streams };
}

async function logIn(page, user, password) {
  await page.goto(url);
  await page.getByLabel(/用户名|User name/).fill(user);
  await page.getByLabel(/密码|Password/).fill(password);
  await page.getByRole("button", { name: /登录|Log in/ }).click();
  await page.waitForSelector(".conn.ok", { timeout: 30_000 });
}

const shot = (page, name) => page.screenshot({ path: join(ART, `${name}.png`) });

test("operator: live map, fog event, approve an entry closure, device confirms, English", async () => {
  const { page, errors, outside, streams } = await newPage();
  await page.goto(url);
  await shot(page, "01-login");
  // Chinese by default.
  assert.equal(await page.locator("h1").textContent(), "智路 运行监控台");
  await logIn(page, "demo", "demo");
  // The live stream opened with a stream ticket: no session token in a URL.
  assert.ok(streams.some((u) => /\/api\/stream\?ticket=[0-9a-f]{64}$/.test(u)), streams.join(" "));
  assert.ok(!streams.some((u) => /token=/.test(u)), streams.join(" "));

  // Live segments drawn on the map.
  await page.waitForFunction(() => window.__zhilu.perf.firstLiveDraw > 0, null, { timeout: 30_000 });
  const segs = await page.evaluate(() => window.__zhilu.model.state.directions.reduce((n, d) => n + d.segments.length, 0));
  assert.ok(segs >= 100, `segments: ${segs}`);
  await shot(page, "02-map-live");

  // A fog event arrives and is listed, with its lowest visibility.
  const fog = page.locator(".item.ev-fog").first();
  await fog.waitFor({ timeout: 120_000 });
  assert.match(await fog.textContent(), /团雾/);
  await fog.click();
  await page.locator(".details").getByText("weather.fog_band").first().waitFor();
  await shot(page, "03-fog-event");

  // A proposed entry closure: approve it.
  await page.locator("#tab-proposals").click();
  const prop = page.locator("li.proposal", { hasText: /收费站入口/ }).filter({ hasText: /关闭/ }).first();
  await prop.waitFor({ timeout: 120_000 });
  const pid = await prop.getAttribute("data-proposal");
  const p = await page.evaluate((id) => window.__zhilu.model.proposals.get(id), pid);
  assert.equal(p.command.action, "entry");
  assert.equal(p.command.value, "closed");
  await shot(page, "04-proposal");
  // Before deciding: the what-if compares doing nothing with the pending
  // proposals side by side (the twin, docs/TWIN.md).
  const wi = page.locator("table.whatif-table");
  await wi.waitFor({ timeout: 30_000 });
  const heads = await wi.locator("thead th").allTextContents();
  assert.ok(heads.includes("不采取措施") && heads.includes("批准建议后"), `what-if columns: ${heads}`);
  assert.ok((await wi.locator("canvas.whatif-ts").count()) >= 4);
  await shot(page, "04b-whatif");
  // The proposal as edited (metered instead of closed) joins the comparison.
  await prop.getByRole("button", { name: "修改" }).click();
  await prop.locator("select.edit-value").selectOption("metered");
  await prop.getByRole("button", { name: "推演此修改" }).click();
  await wi.locator("thead th", { hasText: `${pid} 修改后` }).waitFor({ timeout: 30_000 });
  await prop.getByRole("button", { name: "取消" }).click();
  await prop.getByRole("button", { name: "批准" }).click();
  await page.locator(`li.proposal[data-proposal="${pid}"]`).waitFor({ state: "detached", timeout: 10_000 });

  // The device confirms, and the console shows it: devices tab, then the details.
  await page.locator("#tab-devices").click();
  const row = page.locator(`tr[data-device="${p.device}"]`);
  await row.waitFor();
  await page.waitForFunction(
    ([dev, dir]) => {
      const s = window.__zhilu.model.devices.get(dev)?.state;
      return s && s.action === "entry" && s.value === "closed" && s.direction === dir;
    },
    [p.device, p.command.direction],
    { timeout: 30_000 },
  );
  await page.waitForFunction((dev) => /关闭/.test(document.querySelector(`tr[data-device="${dev}"] td:nth-child(3)`)?.textContent ?? ""), p.device);
  await row.getByRole("button").click();
  await page.locator(`.details .entry-${p.command.direction}`, { hasText: "关闭" }).waitFor();
  await shot(page, "05-entry-closed");

  // The audit trail names the operator.
  const audit = await page.evaluate(async (id) => {
    const s = JSON.parse(sessionStorage.getItem("zhilu.session"));
    const r = await fetch(`/api/proposals?status=approved`, { headers: { authorization: `Bearer ${s.token}` } });
    return (await r.json()).find((x) => x.id === id);
  }, pid);
  assert.equal(audit.decided_by, "demo");

  // English.
  await page.getByRole("button", { name: "切换语言" }).click();
  assert.equal(await page.locator(".brand").textContent(), "zhilu Operations Console");
  await page.locator("#tab-events").click();
  await page.locator(".item.ev-fog", { hasText: "Fog" }).first().waitFor();
  await shot(page, "06-english");
  await page.getByRole("button", { name: "Switch language" }).click();
  assert.equal(await page.locator(".brand").textContent(), "智路 运行监控台");

  assert.deepEqual(errors, []);
  assert.deepEqual(outside, []);
  await page.close();
});

test("forecast: a segment's details show its station's forecast band", async () => {
  const { page, errors } = await newPage();
  await logIn(page, "demo", "demo");
  // The first forecast comes once a 5-minute interval of data time is complete.
  await page.waitForFunction(() => window.__zhilu.panels.forecast.length > 0, null, { timeout: 90_000 });
  // Centre the map on K25+500 and click the road there, with only the
  // segments' layer on (a fog-light zone along the road is clickable too).
  for (const l of ["detectors", "signs", "entries", "weather", "vehicles", "events"]) {
    await page.locator(`input[data-layer="${l}"]`).uncheck();
  }
  await page.evaluate(() => window.__zhilu.map.focus(25_500));
  const box = await page.locator(".map-canvas").boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  const fig = page.locator(".details figure.forecast");
  await fig.waitFor({ timeout: 10_000 });
  assert.match(await fig.locator("figcaption").textContent(), /预测/);
  // Twelve forecast points, and a band polygon around them (the station's
  // forecast may come with the next retrain after the first one).
  await page.waitForFunction(
    () => (document.querySelector(".details figure.forecast polyline.fc-line")?.getAttribute("points") ?? "").trim().split(/\s+/).length === 12,
    null,
    { timeout: 90_000 },
  );
  const pts = await fig.locator("polyline.fc-line").getAttribute("points");
  assert.equal(pts.trim().split(/\s+/).length, 12);
  assert.ok((await fig.locator("polygon.band").getAttribute("points")).trim().length > 0);
  await shot(page, "07-forecast");
  for (const l of ["detectors", "signs", "entries", "weather", "vehicles", "events"]) {
    await page.locator(`input[data-layer="${l}"]`).check();
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test("viewer: the same picture, no decision buttons", async () => {
  const { page, errors } = await newPage();
  await logIn(page, "watcher", "lookout-Pass-1");
  await page.locator("#tab-proposals").click();
  await page.getByText("只读账户：不能审批").waitFor();
  assert.equal(await page.getByRole("button", { name: "批准" }).count(), 0);
  assert.equal(await page.getByRole("button", { name: "驳回" }).count(), 0);
  assert.equal(await page.locator("#tab-audit").count(), 0);
  await shot(page, "08-viewer");
  assert.deepEqual(errors, []);
  await page.close();
});

test("health: the header says `degraded` with the centre's reasons, and clears when ok", async () => {
  const { page, errors } = await newPage();
  // The centre's answer, made degraded here (the server's own truth is
  // tested in crates/server/tests and crates/cli/tests/chaos.rs).
  let degraded = true;
  await page.route("**/api/health", async (route) => {
    const r = await route.fetch();
    const h = await r.json();
    Object.assign(h, degraded
      ? { status: "degraded", reasons: ["disk low: 100 MB free (ingest stops below 256 MB)", "device broker unreachable"] }
      : { status: "ok", reasons: [] });
    await route.fulfill({ response: r, json: h });
  });
  await logIn(page, "watcher", "lookout-Pass-1");
  const badge = page.locator(".health");
  await badge.waitFor({ state: "visible", timeout: 15_000 });
  const text = await badge.textContent();
  assert.match(text, /降级运行/);
  assert.match(text, /disk low: 100 MB free/);
  assert.match(text, /device broker unreachable/);
  await shot(page, "08b-health-degraded");
  degraded = false;
  await badge.waitFor({ state: "hidden", timeout: 15_000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test("accessible: every control reachable by keyboard, AA contrast (axe-core)", async () => {
  // The console's CSP refuses injected scripts; axe-core is let in here only.
  const { page } = await newPage({ bypassCSP: true });
  await logIn(page, "demo", "demo");
  await page.waitForFunction(() => window.__zhilu.perf.firstLiveDraw > 0);
  for (const tab of ["events", "proposals", "devices"]) {
    await page.locator(`#tab-${tab}`).click();
    // Tab through the page from the top; every visible control must take
    // the focus. Controls are named by what they are (live updates redraw
    // lists, so element identity does not last). A control with an id is
    // named by it alone: ids are unique, and a label such as "事件 (8)"
    // changes while the walk runs when an event opens.
    const sig = () => {
      window.__sig = (e) =>
        e.id
          ? [e.tagName, e.id].join("|")
          : [e.tagName, e.className, JSON.stringify({ ...e.dataset }), e.type ?? "", (e.textContent ?? "").trim().slice(0, 24)].join("|");
    };
    await page.evaluate(sig);
    const all = await page.evaluate(() =>
      // A radio group is one stop (arrow keys move within it).
      [...document.querySelectorAll("button, input, select, canvas[tabindex], a[href]")]
        .filter((e) => e.offsetParent !== null && !e.disabled && !(e.type === "radio" && !e.checked))
        .map((e) => window.__sig(e)),
    );
    const want = new Set(all);
    const controls = want.size;
    await page.evaluate(() => document.activeElement?.blur());
    const seen = new Set();
    for (let i = 0; i < controls + 30 && seen.size < controls; i++) {
      await page.keyboard.press("Tab");
      const k = await page.evaluate(() => (document.activeElement ? window.__sig(document.activeElement) : null));
      if (k != null && want.has(k)) seen.add(k);
    }
    const missed = [...want].filter((k) => !seen.has(k)).slice(0, 5);
    assert.equal(seen.size, controls, `${tab}: ${seen.size} of ${controls} controls reached by Tab; missed ${missed.join(" / ")}`);
  }
  // The map answers the keyboard.
  await page.locator(".map-canvas").focus();
  const before = await page.evaluate(() => window.__zhilu.perf.draws);
  await page.keyboard.press("+");
  await page.keyboard.press("ArrowLeft");
  await page.waitForFunction((n) => window.__zhilu.perf.draws > n, before);

  await page.addScriptTag({ path: resolve(here, "../node_modules/axe-core/axe.min.js") });
  const res = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } }),
  );
  const v = res.violations.map((x) => `${x.id}: ${x.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(v, []);
  // The check can fail: a low-contrast text is caught.
  const control = await page.evaluate(async () => {
    const p = document.createElement("p");
    p.id = "low-contrast-probe";
    p.textContent = "低对比度 low contrast";
    p.style.cssText = "color:#444;background:#333;position:fixed;top:0;left:0;z-index:99";
    document.body.appendChild(p);
    const r = await window.axe.run("#low-contrast-probe", { runOnly: ["color-contrast"] });
    p.remove();
    return r.violations.map((x) => x.id);
  });
  assert.deepEqual(control, ["color-contrast"]);
  await page.close();
});

test("performance: first meaningful paint and panning frame rate (recorded)", async () => {
  const { page } = await newPage();
  await logIn(page, "demo", "demo");
  // Reload with the session kept: the time to the first map drawn with live
  // segments, from navigation start.
  await page.reload();
  const paint = await paintTimes(page);
  const pan = await panFrameRate(page, 3000, "demo corridor, whole view");
  const out = { ...paint, ...pan };
  writeFileSync(join(ART, "perf.json"), JSON.stringify(out, null, 2));
  console.log("console performance:", JSON.stringify(out));
  assert.ok(pan.frames > 10, "the map redrew while panning");
  await shot(page, "09-after-pan");
  await page.close();
});

