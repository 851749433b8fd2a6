// Response plans in the console, in a real browser against the real
// `zhilu demo` (issue 17, "Response plans" and "Escalation instead of
// expiry"):
//   1. the fog's entry closures arrive as ONE plan card; left unanswered
//      past the (short) deadline, a safety step raises an alarm the page
//      shows (header banner, the card) and the stream carries (read here
//      through a stream ticket), and nothing of it reads as applied — not
//      the device's history, its panel, the plan, the actions, the audit;
//   2. the same plan is approved with one click: every pending step is
//      applied and the devices confirm.
//
//   cd web && ZHILU_BIN=../target/debug/zhilu node --test e2e/plans.test.mjs

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
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
/** The operator's deadline in the demo (real seconds): short, so the test
 * sees an escalation within seconds. */
const DEADLINE_S = 6;

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
let page;
let errors = [];
let token;
let adminToken;
const demoLog = [];
/** The stream as read by the test (text of every SSE message). */
let streamText = "";
let streamAbort;
/** The plan under test (`PL…`). */
let planId;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "zhilu-plans-e2e-"));
  const port = await freePort();
  // The scripted morning from 05:40 at 30×: the fog bank thickens below
  // 50 m a few simulated minutes later and the entries' closure is proposed.
  demo = spawn(
    BIN,
    ["demo", "--speed", "30", "--start", "05:40", "--deadline-s", String(DEADLINE_S), "--listen", `127.0.0.1:${port}`, "--database", `sqlite://${join(dir, "demo.db")}`],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
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
  const r = await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "demo", password: "demo" }),
  });
  token = (await r.json()).token;
  // An admin beside the demo's operator, to read the audit log.
  execFileSync(BIN, ["user", "add", "auditor", "--role", "admin", "--database", `sqlite://${join(dir, "demo.db")}`], {
    input: "audit-Pass-12345\n",
  });
  const ra = await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "auditor", password: "audit-Pass-12345" }),
  });
  adminToken = (await ra.json()).token;
  // The stream, opened as a browser would: with a one-use ticket.
  const tk = await api("/api/stream/ticket", {});
  streamAbort = new AbortController();
  const s = await fetch(`${url}/api/stream?ticket=${encodeURIComponent(tk.ticket)}`, { signal: streamAbort.signal });
  assert.equal(s.status, 200);
  (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of s.body) streamText += dec.decode(chunk, { stream: true });
    } catch {
      /* aborted at the end */
    }
  })();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
  page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !/404/.test(m.text())) errors.push(m.text());
  });
});

after(async () => {
  streamAbort?.abort();
  await browser?.close();
  demo?.kill("SIGINT");
  await new Promise((r) => (demo?.exitCode != null ? r() : demo?.on("exit", r)));
  writeFileSync(join(ART, "plans-demo.log"), demoLog.join(""));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api(path, body, as = token) {
  const r = await fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${as}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(r.ok, `${path}: ${r.status}`);
  return r.json();
}

/** Stream messages of `kind` read so far, parsed. */
function messages(kind) {
  const out = [];
  for (const block of streamText.split("\n\n")) {
    const ev = block.match(/^event: (.*)$/m)?.[1];
    const data = block
      .split("\n")
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trimStart())
      .join("\n");
    if (ev === kind && data) {
      try {
        out.push(JSON.parse(data));
      } catch {
        /* a block cut in the middle: read again later */
      }
    }
  }
  return out;
}

async function until(what, f, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const shot = (name) => page.screenshot({ path: join(ART, `${name}.png`) });

test("a fog plan arrives as one plan; left unanswered, its safety step raises an alarm and nothing reads as applied", async () => {
  await page.goto(url);
  await page.getByLabel(/用户名|User name/).fill("demo");
  await page.getByLabel(/密码|Password/).fill("demo");
  await page.getByRole("button", { name: /登录|Log in/ }).click();
  await page.waitForSelector(".conn.ok", { timeout: 30_000 });
  await page.locator("#tab-proposals").click();

  // One card for the fog plan, its entry closures as named steps.
  const card = page.locator("li.plan", { has: page.locator(".plan-name", { hasText: /^团雾 K\d+\+\d{3}/ }) }).filter({ hasText: /关闭/ }).first();
  await card.waitFor({ timeout: 150_000 });
  planId = await card.getAttribute("data-plan");
  const plan = await api(`/api/plans/${planId}`);
  assert.equal(plan.event_kind, "fog");
  assert.match(plan.name, /^团雾 K\d+\+\d{3}–K\d+\+\d{3} (上行|下行|双向) 处置预案$/);
  const pending = plan.steps.filter((s) => s.status === "pending");
  assert.ok(pending.length >= 1, JSON.stringify(plan));
  // No second pending plan for the same event.
  const all = await api("/api/plans?status=pending");
  assert.equal(all.filter((p) => p.event === plan.event).length, 1);
  // The card shows the plan's name, every pending step with the device's
  // road-book name, its state, rule and the law.
  assert.equal(await card.locator(".plan-name").textContent(), plan.name);
  for (const s of pending) {
    const li = card.locator(`li.proposal[data-proposal="${s.id}"]`);
    await li.waitFor();
    const text = await li.textContent();
    assert.ok(text.includes(s.device_name), `${s.device_name} in ${text}`);
    assert.notEqual(s.device_name, s.device, "a name from the road book, not the id");
    assert.match(text, /weather\.fog_band/);
  }
  assert.match(await card.locator(".plan-basis").textContent(), /第八十一条/);
  await shot("plans-01-card");
  // The what-if compares the plan's steps with doing nothing.
  await card.getByRole("button", { name: "推演此预案" }).click();
  const wi = page.locator("table.whatif-table");
  await wi.locator("thead th", { hasText: plan.name }).waitFor({ timeout: 60_000 });
  assert.ok((await wi.locator("thead th").allTextContents()).includes("不采取措施"));

  // Unanswered past the deadline: the alarm, in the page and on the stream.
  const closure = pending.find((s) => s.command.value === "closed") ?? pending[0];
  // (A step may be superseded by a newer one while the fog changes: the
  // alarm looked for is the latest of a step still pending.)
  const alarm = await until(
    "an alarm on the stream naming a pending step of the plan",
    async () => {
      const alarms = messages("alarm").filter((a) => a.plan === planId);
      if (!alarms.length) return null;
      const now = await api(`/api/plans/${planId}`);
      return alarms.reverse().find((a) => now.steps.some((s) => s.id === a.proposal && s.status === "pending"));
    },
    DEADLINE_S * 1000 + 60_000,
  );
  assert.equal(alarm.alarm, "proposal_unanswered");
  assert.ok(alarm.plan_name.endsWith("处置预案"));
  assert.ok(messages("plan").some((m) => m.plan?.id === planId), "the plan itself went out on the stream");
  const banner = page.locator("header .alarm");
  await banner.waitFor({ state: "visible", timeout: 20_000 });
  assert.match(await banner.textContent(), /安全提议逾期未处理/);
  await page.waitForFunction((id) => (document.querySelector("header .alarm")?.textContent ?? "").includes(id), alarm.proposal, { timeout: 20_000 });
  await card.locator(".plan-alarm").waitFor({ timeout: 10_000 });
  await shot("plans-02-alarm");

  // Nothing of the unanswered steps reads as applied: the plan, the
  // actions, the audit, the devices tab, the device panel and its history.
  const again = await api(`/api/plans/${planId}`);
  assert.equal(again.status, "pending");
  for (const s of again.steps) assert.equal(s.applied, null, JSON.stringify(s));
  const actions = await api("/api/actions?limit=2000");
  for (const a of actions.filter((x) => plan.steps.some((s) => s.id === x.proposal))) {
    assert.equal(a.applied, false, JSON.stringify(a));
    assert.equal(a.mode, "confirm");
  }
  const audit = await api("/api/audit?limit=5000", undefined, adminToken);
  assert.ok(audit.some((e) => e.action === "proposal.escalated" && e.target === alarm.proposal));
  assert.ok(!audit.some((e) => /^proposal\.(approve|edit|override|expired)$/.test(e.action) && plan.steps.some((s) => s.id === e.target)));
  const dev = closure.device;
  const devState = (await api("/api/devices")).find((d) => d.device === dev);
  assert.ok(!(devState?.state?.value === "closed" && devState?.state?.direction === closure.direction), JSON.stringify(devState));
  // Reloaded, the console reads the actions from the API, where the
  // proposals' records are (mode confirm, applied false).
  await page.reload();
  await page.waitForSelector(".conn.ok", { timeout: 30_000 });
  await page.locator("#tab-devices").click();
  const row = page.locator(`tr[data-device="${dev}"]`);
  await row.waitFor();
  assert.doesNotMatch(await row.locator("td:nth-child(2)").textContent(), /关闭/);
  await row.getByRole("button").click();
  const details = page.locator(".details");
  await details.locator(".device-history h3").waitFor();
  const panel = await details.textContent();
  assert.doesNotMatch(panel, /confirm/, panel);
  assert.doesNotMatch(await details.locator(".device-history").textContent(), /关闭/);
  assert.doesNotMatch(await details.locator(`.entry-${closure.direction}`).textContent(), /关闭/);
  await shot("plans-03-device-not-applied");
  assert.deepEqual(errors, []);
});

test("the fog plan is approved with one click: every pending step applied, the devices confirm", async () => {
  assert.ok(planId, "the first test found the plan");
  await page.locator("#tab-proposals").click();
  const card = page.locator(`li.plan[data-plan="${planId}"]`);
  await card.waitFor();
  const before = await api(`/api/plans/${planId}`);
  const pending = before.steps.filter((s) => s.status === "pending");
  await card.getByRole("button", { name: /全部批准/ }).click();
  await card.waitFor({ state: "detached", timeout: 15_000 });
  const after = await api(`/api/plans/${planId}`);
  assert.equal(after.status, "approved", JSON.stringify(after));
  for (const s of pending) {
    const now = after.steps.find((x) => x.id === s.id);
    assert.equal(now.status, "approved");
    assert.deepEqual(now.applied.value, s.command.value);
  }
  // One audit line for the plan, naming the operator.
  const audit = await api("/api/audit?limit=5000", undefined, adminToken);
  assert.ok(audit.some((e) => e.action === "plan.approve" && e.target === planId && e.actor === "demo"));
  // Each device confirms what its step asked; the alarm banner clears.
  for (const s of pending) {
    await page.waitForFunction(
      ([d, dir, v]) => {
        const st = window.__zhilu.model.devices.get(d)?.state;
        return st && st.action === "entry" && st.value === v && st.direction === dir;
      },
      [s.device, s.command.direction, s.command.value],
      { timeout: 30_000 },
    );
  }
  await until("a plan message saying decided", () => messages("plan").some((m) => m.plan?.id === planId && m.change === "decided"), 10_000);
  // The banner no longer names the plan's steps (other plans may still wait).
  await page.waitForFunction(
    (ids) => {
      const b = document.querySelector("header .alarm");
      return !b || b.hidden || !ids.some((id) => new RegExp(`\\b${id}\\b`).test(b.textContent ?? ""));
    },
    pending.map((s) => s.id),
    { timeout: 10_000 },
  );
  await shot("plans-04-approved");
  assert.deepEqual(errors, []);
});
