// End-to-end test of the operator's side of events and the shift handover
// (issue 17) in a real browser: the real `zhilu demo` on loopback, Debian's
// chromium driven by playwright-core (the set-up of console.test.mjs).
//
//   ZHILU_BIN=../target/debug/zhilu node --test e2e/flow.test.mjs
//
// Flow: events listed worst first with severity badges → an event
// acknowledged, noted and closed on its card (a close without a reason is
// refused) → the admin's audit log shows the three steps → the operator
// signs the handover, another operator acknowledges it, the sheet prints.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
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

const LAUNCH = { executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS };
const LEVELS = ["critical", "major", "minor", "info"];

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
  const dir = mkdtempSync(join(tmpdir(), "zhilu-flow-e2e-"));
  dbUrl = `sqlite://${join(dir, "demo.db")}`;
  const port = await freePort();
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
  // The incoming operator and an auditor beside the demo's operator.
  execFileSync(BIN, ["user", "add", "chief", "--role", "operator", "--database", dbUrl], { input: "incoming-Pass-1\n" });
  execFileSync(BIN, ["user", "add", "auditor", "--role", "admin", "--database", dbUrl], { input: "ledger-Pass-9\n" });
  browser = await chromium.launch(LAUNCH);
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGINT");
  writeFileSync(join(ART, "flow-demo.log"), demoLog.join(""));
});

async function newPage() {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !/404/.test(m.text())) errors.push(m.text());
  });
  return { page, errors };
}

async function logIn(page, user, password) {
  await page.goto(url);
  await page.getByLabel(/用户名|User name/).fill(user);
  await page.getByLabel(/密码|Password/).fill(password);
  await page.getByRole("button", { name: /登录|Log in/ }).click();
  await page.waitForSelector(".conn.ok", { timeout: 30_000 });
}

const shot = (page, name) => page.screenshot({ path: join(ART, `${name}.png`) });

let eventId;
let handoverId;

test("an event acknowledged, noted and closed on its card appears so in the audit", async () => {
  const { page, errors } = await newPage();
  await logIn(page, "demo", "demo");
  // Events arrive with their severity badges, worst first.
  await page.locator(".list .item [data-level]").first().waitFor({ timeout: 120_000 });
  const levels = await page.locator(".list .item .main [data-level]").evaluateAll((els) => els.map((e) => e.dataset.level));
  const ranks = levels.map((l) => LEVELS.indexOf(l));
  assert.ok(ranks.every((r) => r >= 0), `levels: ${levels}`);
  assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), `listed worst first: ${levels}`);

  // An active event no proposal waits on (a close waits for decisions).
  eventId = await page.waitForFunction(
    () => {
      const m = window.__zhilu.model;
      const waiting = new Set([...m.proposals.values()].filter((p) => p.status === "pending").map((p) => p.event));
      const e = [...m.events.values()].find((x) => !waiting.has(x.id));
      return e ? e.id : null;
    },
    null,
    { timeout: 120_000 },
  ).then((h) => h.jsonValue());
  await page.locator(`.list [data-event="${eventId}"]`).click();
  const card = page.locator(`.details [data-event-card="${eventId}"]`);
  await card.waitFor({ timeout: 10_000 });
  assert.ok((await card.locator(".flow-basis").textContent()).trim().length > 0, "the card names its basis");

  // Acknowledge.
  await card.getByRole("button", { name: "确认" }).click();
  await page.locator(`.details [data-event-card="${eventId}"] .flow-status .wf-acknowledged`).waitFor({ timeout: 10_000 });
  // A note.
  await page.locator(".details #flow-note").fill("巡逻车已到场");
  await page.locator(".details").getByRole("button", { name: "添加备注" }).click();
  await page.locator(".details .flow-notes", { hasText: "巡逻车已到场" }).waitFor({ timeout: 10_000 });
  // Close: a reason is required.
  await page.locator(".details").getByRole("button", { name: "关闭事件" }).click();
  await page.locator(".details .flow-msg", { hasText: "须填写理由" }).waitFor();
  await page.locator(".details #flow-close-reason").fill("现场已清理");
  await page.locator(".details").getByRole("button", { name: "关闭事件" }).click();
  await page.locator(".details .flow-status .wf-closed").waitFor({ timeout: 10_000 });
  const hist = await page.locator(".details .flow-history li").evaluateAll((els) => els.map((e) => e.dataset.change));
  for (const c of ["acknowledged", "note", "closed"]) assert.ok(hist.includes(c), `history ${hist}`);
  await shot(page, "flow-01-event-card");
  assert.deepEqual(errors, []);
  await page.close();

  // The admin's audit log: actor, action, event.
  const admin = await newPage();
  await logIn(admin.page, "auditor", "ledger-Pass-9");
  await admin.page.locator("#tab-audit").click();
  await admin.page.locator("#audit-q").fill(eventId);
  await admin.page.getByRole("button", { name: "搜索" }).click();
  for (const action of ["event.ack", "event.note", "event.close"]) {
    const row = admin.page.locator("table.audit tbody tr", { hasText: action }).filter({ hasText: eventId });
    await row.first().waitFor({ timeout: 10_000 });
    assert.match(await row.first().textContent(), /demo/);
  }
  await shot(admin.page, "flow-02-audit");
  assert.deepEqual(admin.errors, []);
  await admin.page.close();
});

test("the handover: signed by the outgoing operator, acknowledged by the incoming one, printable", async () => {
  const { page, errors } = await newPage();
  await logIn(page, "demo", "demo");
  await page.locator("#tab-handover").click();
  const sheet = page.locator(".panel-body .handover-sheet");
  await sheet.waitFor({ timeout: 10_000 });
  // The shift's log has the steps taken on the event.
  if (eventId) await sheet.locator(".flow-steps", { hasText: eventId }).waitFor({ timeout: 10_000 });
  // Printable: the print dialog gets the sheet alone.
  await page.evaluate(() => {
    window.print = () => {
      window.__printed = document.querySelector(".flow-print-holder")?.textContent ?? "";
    };
  });
  await page.getByRole("button", { name: "打印" }).click();
  assert.match(await page.evaluate(() => window.__printed), /本班记录/);
  await shot(page, "flow-03-handover");
  // Sign.
  await page.locator("#flow-handover-note").fill("雾区管制仍在执行");
  await page.getByRole("button", { name: "交班签字" }).click();
  await page.locator(".panel-body .flow-last", { hasText: "待接班确认" }).waitFor({ timeout: 10_000 });
  handoverId = (await page.locator(".panel-body .flow-last b").first().textContent()).trim();
  assert.match(handoverId, /^H\d+$/);
  // The signer cannot acknowledge their own handover: no button.
  assert.equal(await page.getByRole("button", { name: "接班确认" }).count(), 0);
  assert.deepEqual(errors, []);
  await page.close();

  // The incoming operator acknowledges it.
  const inc = await newPage();
  await logIn(inc.page, "chief", "incoming-Pass-1");
  await inc.page.locator("#tab-handover").click();
  await inc.page.locator("#flow-ack-note").fill("已接班");
  await inc.page.getByRole("button", { name: "接班确认" }).click();
  await inc.page.locator(".panel-body .flow-last", { hasText: "确认人 chief" }).waitFor({ timeout: 10_000 });
  await shot(inc.page, "flow-04-handover-acked");
  // And the API agrees.
  const h = await inc.page.evaluate(async () => {
    const s = JSON.parse(sessionStorage.getItem("zhilu.session"));
    const r = await fetch(`/api/handovers`, { headers: { authorization: `Bearer ${s.token}` } });
    return (await r.json())[0];
  });
  assert.equal(h.id, handoverId);
  assert.equal(h.signed_by, "demo");
  assert.equal(h.note, "雾区管制仍在执行");
  assert.equal(h.acked_by, "chief");
  assert.equal(h.ack_note, "已接班");
  assert.deepEqual(inc.errors, []);
  await inc.page.close();
});
