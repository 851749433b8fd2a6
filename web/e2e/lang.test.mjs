// One clock and one language (issue 17), in a real browser:
//
// 1. A fresh `zhilu serve` with no data: the header says "无数据", not a
//    green "● 实时"; the browser asks for nothing that answers 404; a wrong
//    password is told in Chinese.
// 2. The real `zhilu demo` (fog, entry closures, automatic actions): every
//    tab, an event's details and history, a device's history and the audit
//    log, in Chinese and in English. The visible text in Chinese holds no
//    English words but units, K-numbers, ids, rule names and the like (an
//    allow-list); in English, no Chinese characters but the road book's
//    names and what a sign displays (in “…”, verbatim); every time on the
//    page is data time in one format, `2026-12-08 07:25:40`.
//
//   ZHILU_BIN=../target/debug/zhilu ZHILU_CHROMIUM=/usr/bin/chromium node --test e2e/lang.test.mjs

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { LAUNCH_ARGS } from "./probe.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, "..", process.env.ZHILU_BIN ?? "../target/debug/zhilu");
const CHROMIUM = process.env.ZHILU_CHROMIUM ?? "/usr/bin/chromium";
const ROAD = resolve(here, "../../examples/demo/ROAD.toml");
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

/** Starts `args` and resolves with the URL it prints. */
function start(args, log) {
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  const url = new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`did not start:\n${log.join("")}`)), 120_000);
    child.stdout.on("data", (b) => {
      const s = b.toString();
      log.push(s);
      const m = s.match(/(http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.stderr.on("data", (b) => log.push(b.toString()));
    child.on("exit", (c) => rej(new Error(`exited ${c}:\n${log.join("")}`)));
  });
  return { child, url };
}

const dirs = [];
const children = [];
let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
});

after(async () => {
  await browser?.close();
  for (const c of children) c.kill("SIGINT");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function newPage(url) {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  const failed = [];
  const errors = [];
  page.on("response", (r) => {
    if (r.status() === 404) failed.push(`${r.status()} ${r.url()}`);
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return { page, failed, errors };
}

async function logIn(page, user, password) {
  await page.getByLabel(/用户名|User name/).fill(user);
  await page.getByLabel(/密码|Password/).fill(password);
  await page.getByRole("button", { name: /登录|Log in/ }).click();
}

/** The page's visible text (what a person reads; hidden parts left out). */
const visibleText = (page) => page.evaluate(() => document.body.innerText);

// ------------------------------------------------------------ the scans

/** What may stand in Latin letters in the Chinese console. */
const LATIN_OK = [
  /K\d+\+\d{3}/g, // stakes
  /\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b/g, // times
  /\b[a-z_]+\.[a-z_]+\b/g, // rule names (weather.fog_band, incident.queue)
  /\bdocs\/[A-Z]+\.md\b/g, // where the documentation says more
  /\bkm\/h\b|\bveh·h\b|\bveh\/[hk]m?\b|\bkm\b|\bMB\b|°C|\bms\b|\bmin\b|\bm\b|\bs\b|\bh\b/g, // units
  /\b[EP]\d+\b/g, // event and proposal ids
  /\b(VSL|VMS|ETC|Enter)\b/g, // names people use as they are
  /\bEnglish\b/g, // the language switch names the other language
];

/** Latin words left in `text` once the allowed ones are taken out. */
function latinWords(text, ids) {
  let s = text;
  for (const re of LATIN_OK) s = s.replace(re, " ");
  return [...new Set((s.match(/[A-Za-z][A-Za-z0-9_\-']*/g) ?? []).filter((w) => !ids.has(w)))];
}

/** Chinese characters left in `text` once names and verbatim texts are out. */
function hanLeft(text, names) {
  let s = text.replace(/“[^”]*”/g, " "); // what a sign shows, an operator's words
  for (const n of [...names].sort((a, b) => b.length - a.length)) s = s.split(n).join(" ");
  s = s.replace(/中文/g, " "); // the language switch names the other language
  return [...new Set(s.match(/[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+/g) ?? [])];
}

/** Times not in the one format: clock readings without their date, and
 * dates written any other way. */
function strayTimes(text) {
  const s = text.replace(/\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b/g, " ");
  return [
    ...(s.match(/\b\d{1,2}:\d{2}(:\d{2})?\b/g) ?? []),
    ...(s.match(/\b\d{1,4}\/\d{1,2}\/\d{1,4}\b/g) ?? []),
    ...(s.match(/\b\d{4}-\d{2}-\d{2}T/g) ?? []),
    ...(s.match(/\b(AM|PM|上午|下午)\b/g) ?? []),
  ];
}

test("the scans catch what they are for", () => {
  const ids = new Set(["D001U"]);
  assert.deepEqual(latinWords("团雾 · K45+200 · 60 km/h · D001U · weather.fog_band · 2026-12-08 07:25:40", ids), []);
  assert.deepEqual(latinWords("released: no plan asks", ids), ["released", "no", "plan", "asks"]);
  assert.deepEqual(latinWords("发生 opened", ids), ["opened"]);
  assert.deepEqual(hanLeft("Fog · 固安 · “前方团雾 限速60”", new Set(["固安"])), []);
  assert.deepEqual(hanLeft("Fog band 4 · 依据", new Set()), ["依据"]);
  assert.deepEqual(strayTimes("Data time 2026-12-08 07:25:40"), []);
  assert.deepEqual(strayTimes("07:25:40"), ["07:25:40"]);
  assert.deepEqual(strayTimes("2026/12/8 07:25:40"), ["07:25:40", "2026/12/8"]);
});

// ------------------------------------------------------------ a fresh server

test("a fresh server: no data yet (no green live), no 404s, the login error in Chinese", async () => {
  const dir = mkdtempSync(join(tmpdir(), "zhilu-lang-e2e-"));
  dirs.push(dir);
  const db = `sqlite://${join(dir, "fresh.db")}`;
  execFileSync(BIN, ["user", "add", "op", "--role", "operator", "--database", db], { input: "fresh-Pass-1\n" });
  const log = [];
  const port = await freePort();
  const s = start(["serve", "--road", ROAD, "--database", db, "--listen", `127.0.0.1:${port}`], log);
  children.push(s.child);
  const url = await s.url;

  const { page, failed, errors } = await newPage(url);
  await logIn(page, "op", "wrong-password");
  const alert = page.locator(".login .error");
  await alert.getByText("用户名或密码错误").waitFor({ timeout: 10_000 });
  assert.doesNotMatch(await alert.textContent(), /wrong user name/);

  await logIn(page, "op", "fresh-Pass-1");
  const conn = page.locator(".conn");
  await page.locator(".conn.idle").waitFor({ timeout: 15_000 });
  // Past a health poll and the stream's first seconds: still no data, no green.
  await page.waitForTimeout(6_000);
  assert.equal(await page.locator(".conn.ok").count(), 0);
  assert.match(await conn.textContent(), /无数据/);
  assert.doesNotMatch(await conn.textContent(), /实时/);
  assert.equal((await page.locator(".data-time").textContent()).trim(), "");
  await page.screenshot({ path: join(ART, "lang-01-no-data.png") });
  // English too.
  await page.getByRole("button", { name: "切换语言" }).click();
  assert.match(await conn.textContent(), /No data yet/);
  assert.deepEqual(failed, [], "requests answered 404");
  assert.deepEqual(errors, []);
  await page.close();
  s.child.kill("SIGINT");
});

// ------------------------------------------------------------ the demo

test("the demo in Chinese and English: no untranslated server string, one time format", async () => {
  const dir = mkdtempSync(join(tmpdir(), "zhilu-lang-e2e-"));
  dirs.push(dir);
  const log = [];
  const port = await freePort();
  // The scripted morning from 05:40: fog thickens below 50 m a few
  // simulated minutes later; entry closures are proposed, signs set.
  const s = start(
    ["demo", "--speed", "30", "--start", "05:40", "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${join(dir, "demo.db")}`],
    log,
  );
  children.push(s.child);
  const url = await s.url;
  // An administrator (the audit log is theirs) beside the demo's operator.
  execFileSync(BIN, ["user", "add", "chief", "--role", "admin", "--database", `sqlite://${join(dir, "demo.db")}`], {
    input: "Overseer-Pass-9\n",
  });
  const { page, failed, errors } = await newPage(url);
  await logIn(page, "chief", "Overseer-Pass-9");
  await page.locator(".conn.ok").waitFor({ timeout: 30_000 });

  // Names and ids from the road book (ids may stand as they are; names in
  // Chinese may stand in English).
  const road = await page.evaluate(() => window.__zhilu.model.road);
  const ids = new Set(["demo", "chief"]);
  const names = new Set([road.name]);
  for (const k of ["detectors", "weather", "vsl", "vms", "fog_lights", "deicers", "interchanges", "tunnels", "service_areas"]) {
    for (const d of road[k]) {
      ids.add(d.id);
      if (d.name) names.add(d.name);
    }
  }

  // Fog, an entry closure proposed: approve it (an operator's decision in
  // the audit, a device history with a mode).
  await page.locator(".item.ev-fog").first().waitFor({ timeout: 120_000 });
  await page.locator("#tab-proposals").click();
  const prop = page.locator("li.proposal", { hasText: /收费站入口/ }).filter({ hasText: /关闭/ }).first();
  await prop.waitFor({ timeout: 120_000 });
  const pid = await prop.getAttribute("data-proposal");
  const p = await page.evaluate((id) => window.__zhilu.model.proposals.get(id), pid);
  // The reason came as a code, and is shown from it, not as the server's text.
  assert.equal(p.reason_code?.code, "fog_band", JSON.stringify(p.reason_code));
  assert.match(await prop.locator(".reason").textContent(), /^团雾\d级：能见度 \d+ m/);
  // The entry by its road-book name, not its id.
  const icName = road.interchanges.find((x) => x.id === p.device)?.name;
  assert.ok(icName && (await prop.textContent()).includes(icName), `${p.device} named ${icName}`);
  await prop.getByRole("button", { name: "批准" }).click();
  await page.locator(`li.proposal[data-proposal="${pid}"]`).waitFor({ state: "detached", timeout: 10_000 });
  // Automatic actions too (signs), so that the audit holds both.
  await page.waitForFunction(() => window.__zhilu.model.actions.some((a) => a.mode === "auto" || a.command?.reason), null, { timeout: 60_000 });
  for (const v of await page.evaluate(() => [...window.__zhilu.model.vehicles.keys()])) ids.add(v);

  /** Every view a duty officer reads, as visible text, in the current language. */
  const views = async (changes) => {
    const out = {};
    await page.locator("#tab-events").click();
    await page.locator(".item.ev-fog").first().click();
    await page.locator(".details .event-history li", { hasText: changes }).first().waitFor();
    out.events = await visibleText(page);
    await page.locator("#tab-proposals").click();
    await page.waitForTimeout(300);
    out.proposals = await visibleText(page);
    await page.locator("#tab-devices").click();
    await page.locator(`tr[data-device="${p.device}"] button`).click();
    await page.locator(".details .device-history li").first().waitFor();
    out.devices = await visibleText(page);
    await page.locator("#tab-audit").click();
    await page.locator("table.audit tbody tr").nth(2).waitFor({ timeout: 10_000 });
    out.audit = await visibleText(page);
    return out;
  };

  const zh = await views(/发生|更新|结束/);
  await page.screenshot({ path: join(ART, "lang-02-audit-zh.png") });
  const zhLeft = Object.entries(zh).flatMap(([tab, text]) => [
    ...latinWords(text, ids).map((w) => `${tab}: English word ${w}`),
    ...strayTimes(text).map((w) => `${tab}: time ${w}`),
  ]);
  assert.deepEqual(zhLeft, [], "the Chinese console");
  // The audit shows the operator's approval and the brain's own actions, in words.
  assert.match(zh.audit, /批准建议/);
  assert.match(zh.audit, /自动下发指令|提出控制建议/);
  assert.match(zh.devices, /历史\n(.*\n)*.*关闭/);
  assert.match(zh.events, /发生/);

  await page.getByRole("button", { name: "切换语言" }).click();
  assert.equal(await page.locator(".brand").textContent(), "zhilu Operations Console");
  const en = await views(/opened|updated|ended/);
  await page.screenshot({ path: join(ART, "lang-03-audit-en.png") });
  const enLeft = Object.entries(en).flatMap(([tab, text]) => [
    ...hanLeft(text, names).map((w) => `${tab}: Chinese ${w}`),
    ...strayTimes(text).map((w) => `${tab}: time ${w}`),
  ]);
  assert.deepEqual(enLeft, [], "the English console");
  assert.match(en.audit, /proposal approved/);
  assert.match(en.events, /opened/);
  // A past period of the time–space diagram is asked for in the same
  // format (no browser date picker, which writes the browser's locale).
  const hourAgo = await page.evaluate(() => window.__zhilu.model.state.ts_ms - 3_600_000);
  const minute = (ms) => new Date(ms + road.tz_offset_s * 1000).toISOString().replace("T", " ").slice(0, 16);
  await page.locator(".ts-from").fill(minute(hourAgo));
  await page.locator(".ts-hours").fill("1");
  await page.locator(".ts-show").click();
  await page.waitForFunction(() => / – /.test(document.querySelector(".ts-status")?.textContent ?? ""));
  const period = await page.locator(".ts-status").textContent();
  assert.equal(period, `${minute(hourAgo)}:00 – ${minute(hourAgo + 3_600_000)}:00`);
  // The header's data time is the one format.
  assert.match(await page.locator(".data-time").textContent(), /^Data time \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

  // Opened again once a forecast exists: the console asks for it (and for
  // the state) and is live at once, still without a 404.
  await page.waitForFunction(async () => (await (await fetch("/api/health")).json()).forecast_ready, null, { timeout: 60_000 });
  await page.reload();
  await page.locator(".conn.ok").waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => window.__zhilu.panels.forecast.length > 0, null, { timeout: 30_000 });

  assert.deepEqual(failed, [], "requests answered 404");
  assert.deepEqual(errors, []);
  await page.close();
});
