// zhilu operators' console (智路 运行监控台): log in, then the live map,
// the side panels and the time–space diagram, all fed by one stream.

import "./style.css";
import { ApiError, type LiveStream, type Session, currentSession, get, loadSession, login, logout, openStream, setUnauthorizedHandler } from "./api";
import { type Lang, clock, getLang, healthText, kindName, setLang, setTz, t } from "./i18n";
import { KpiPanel } from "./kpi";
import { noteTick } from "./time";
import { MapView, perf } from "./map";
import { type ForecastStation, model } from "./model";
import { Panels, esc } from "./panels";
import { TimeSpaceView } from "./timespace";
import { planBook } from "./plans";

const app = document.getElementById("app")!;
let stream: LiveStream | null = null;
let forecastTimer = 0;
let healthTimer = 0;

declare global {
  interface Window {
    __zhilu: unknown;
  }
}

function showLogin(message = ""): void {
  stream?.close();
  stream = null;
  window.clearInterval(forecastTimer);
  window.clearInterval(healthTimer);
  document.title = t("title");
  app.innerHTML = `
    <main class="login">
      <form class="login-form" aria-labelledby="login-title">
        <h1 id="login-title">${t("title")}</h1>
        <label>${t("username")} <input name="username" autocomplete="username" required autofocus></label>
        <label>${t("password")} <input name="password" type="password" autocomplete="current-password" required></label>
        <p class="error" role="alert">${esc(message)}</p>
        <button type="submit" class="primary">${t("login")}</button>
        <button type="button" class="lang" aria-label="${t("languageLabel")}">${t("language")}</button>
      </form>
    </main>`;
  const form = app.querySelector("form")!;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    try {
      const s = await login(String(fd.get("username")), String(fd.get("password")));
      await showConsole(s);
    } catch (err) {
      showLogin(`${t("loginFailed")}: ${loginError(err)}`);
    }
  });
  app.querySelector(".lang")!.addEventListener("click", () => {
    setLang(getLang() === "zh" ? "en" : "zh");
    showLogin(message);
  });
}

async function showConsole(s: Session): Promise<void> {
  app.innerHTML = `
    <header class="top">
      <h1 class="brand">${t("title")}</h1>
      <span class="road-name"></span>
      <span class="data-time" aria-live="off"></span>
      <span class="conn" role="status"></span>
      <span class="health" role="status" hidden></span>
      <span class="alarm" role="alert" hidden></span>
      <span class="spacer"></span>
      <span class="user"></span>
      <button type="button" class="lang" aria-label="${t("languageLabel")}"></button>
      <button type="button" class="logout"></button>
    </header>
    <main class="grid">
      <section class="map-area" aria-labelledby="map-h">
        <h2 id="map-h" class="sr-only"></h2>
        <div class="map-host"></div>
        <div class="map-tools">
          <button type="button" class="zin" aria-label="">+</button>
          <button type="button" class="zout" aria-label="">−</button>
          <button type="button" class="zfit"></button>
          <label class="hz"><input type="checkbox" class="hazmat-only"> <span></span></label>
        </div>
        <div class="legend" role="group"></div>
        <section class="kpi" aria-labelledby="kpi-h"></section>
      </section>
      <aside class="side" aria-label=""></aside>
      <section class="ts-area" aria-labelledby="ts-h"><h2 id="ts-h" class="sr-only"></h2><div class="ts-host"></div></section>
    </main>
    <div class="toast" role="status" aria-live="polite"></div>`;
  const map = new MapView(app.querySelector(".map-host")!);
  const panels = new Panels(app.querySelector(".side")!);
  const ts = new TimeSpaceView(app.querySelector(".ts-host")!);
  const kpi = new KpiPanel(app.querySelector(".kpi")!);
  // The corridor is fitted into the band the panels over the map leave free.
  const mapArea = app.querySelector<HTMLElement>(".map-area")!;
  map.insets = () => {
    const a = mapArea.getBoundingClientRect();
    const k = kpi.el.getBoundingClientRect();
    const tools = app.querySelector(".map-tools")!.getBoundingClientRect();
    const lg = app.querySelector(".legend")!.getBoundingClientRect();
    return { top: Math.max(k.bottom, tools.bottom) - a.top, bottom: lg.height ? a.bottom - lg.top : 0 };
  };
  new ResizeObserver(() => map.refit()).observe(kpi.el);
  new ResizeObserver(() => map.refit()).observe(app.querySelector(".legend")!);
  ts.onPeriod = (from, to) => void kpi.loadHistory(from, to);
  panels.onFocus = (m) => map.focus(m);
  map.onSelect = (f) => panels.showDetails(f);
  app.querySelector(".zin")!.addEventListener("click", () => map.zoom(1.4));
  app.querySelector(".zout")!.addEventListener("click", () => map.zoom(1 / 1.4));
  app.querySelector(".zfit")!.addEventListener("click", () => map.fit());
  app.querySelector<HTMLInputElement>(".hazmat-only")!.addEventListener("change", (e) => {
    map.hazmatOnly = (e.target as HTMLInputElement).checked;
    map.invalidate();
  });
  app.querySelector(".logout")!.addEventListener("click", async () => {
    await logout();
    showLogin();
  });

  const labels = () => {
    document.title = `${t("title")} · ${model.road?.name ?? ""}`;
    app.querySelector(".brand")!.textContent = t("title");
    app.querySelector(".lang")!.textContent = t("language");
    app.querySelector(".lang")!.setAttribute("aria-label", t("languageLabel"));
    app.querySelector(".logout")!.textContent = t("logout");
    app.querySelector(".user")!.textContent = `${s.user} · ${kindName(s.role)}`;
    app.querySelector("#map-h")!.textContent = t("map");
    app.querySelector("#ts-h")!.textContent = t("timespace");
    app.querySelector(".side")!.setAttribute("aria-label", `${t("events")} / ${t("proposals")} / ${t("devices")}`);
    app.querySelector(".zin")!.setAttribute("aria-label", t("zoomIn"));
    app.querySelector(".zout")!.setAttribute("aria-label", t("zoomOut"));
    app.querySelector(".zfit")!.textContent = t("resetView");
    app.querySelector(".hz span")!.textContent = t("hazmatOnly");
    const legend = app.querySelector<HTMLElement>(".legend")!;
    legend.setAttribute("aria-label", t("layers"));
    map.renderLegend(legend);
    kpi.render();
    map.label();
    ts.label();
    panels.render();
    status();
  };
  const healthEl = app.querySelector<HTMLElement>(".health")!;
  let health: Health = { status: "ok", reasons: [] };
  let forecastAsked = false;
  const showHealth = () => {
    const bad = health.status !== "ok";
    healthEl.hidden = !bad;
    if (!bad) return;
    // The codes in the console's language (the English texts for a server
    // that sends none).
    const why = (health.codes?.length ? health.codes.map(healthText) : health.reasons).join(getLang() === "zh" ? "；" : "; ");
    healthEl.textContent = `⚠ ${t("degraded")}: ${why}`;
    healthEl.title = why;
  };
  const status = () => {
    const c = app.querySelector(".conn");
    if (!c) return;
    // Live only with data: a fresh server says so until the first tick.
    const live = model.connected && model.state != null;
    c.textContent = live ? `● ${t("connected")}` : model.connected ? `○ ${t("noDataYet")}` : `○ ${t("disconnected")}`;
    c.className = `conn ${live ? "ok" : model.connected ? "idle" : "bad"}`;
    showHealth();
  };
  const dataTime = () => {
    const el = app.querySelector(".data-time");
    if (el) el.textContent = model.state ? `${t("dataTime")} ${clock(model.state.ts_ms, true)}` : "";
  };
  let wasLive = false;
  model.on((c) => {
    if (c === "state") {
      dataTime();
      // The first state with data turns the header live (a reload before
      // the first tick emits "state" with none).
      if (!wasLive && model.state != null) {
        wasLive = true;
        status();
      }
    }
    if (c === "status") status();
  });
  app.querySelector(".lang")!.addEventListener("click", () => {
    setLang((getLang() === "zh" ? "en" : "zh") as Lang);
    const toast = app.querySelector(".toast");
    if (toast) {
      toast.classList.remove("show");
      toast.textContent = "";
    }
    labels();
    dataTime();
  });

  window.__zhilu = { perf, model, map, ts, panels, kpi };
  await model.loadRoad();
  setTz(model.road.tz_offset_s);
  app.querySelector(".road-name")!.textContent = model.road.name;
  labels();
  // Health first: whether there is a state and a forecast to ask for yet
  // (they answer 404 before), and the clocks of the last tick.
  await loadHealth();
  await model.reload(hasState());
  await planBook.reload();
  dataTime();
  void model.loadLiveHistory();
  void kpi.load();
  void kpi.loadHistory();

  const alarms = new Alarms(app.querySelector<HTMLElement>(".alarm")!, () => labels());
  let everOpen = false;
  stream = openStream(
    (kind, data) => {
      if (kind === "alarm") {
        alarms.raise(data);
        planBook.alarm(data);
        return;
      }
      if (kind === "plan") {
        planBook.apply(data);
        return;
      }
      if (kind === "proposal" && data?.status && data.status !== "pending") alarms.answered(data.id);
      if (kind === "lagged") {
        panels.toast(t("lagged"));
        void model.reload(hasState()).then(() => planBook.reload());
        return;
      }
      model.apply(kind, data);
    },
    (open) => {
      if (open && everOpen && !model.connected) void model.reload(hasState()).then(() => planBook.reload());
      everOpen ||= open;
      model.connected = open;
      model.emit("status");
    },
  );

  async function loadForecast(): Promise<void> {
    if (!health.forecast_ready) return;
    try {
      const f = await get<{ issued_ms: number; method: string; stations: ForecastStation[] }>("/api/forecast");
      ts.forecast = panels.forecast = f.stations ?? [];
      ts.forecastIssued = panels.forecastIssued = f.issued_ms;
      panels.forecastMethod = f.method;
      ts.invalidate();
    } catch {
      /* no forecast yet (or none served): the views show none */
    }
  }

  forecastTimer = window.setInterval(loadForecast, 30_000);

  // The centre's own health: `degraded` with its reasons (storage failing,
  // disk low, broker down, a source's clock off, ticks stalled) in the
  // header until it is `ok` again.
  async function loadHealth(): Promise<void> {
    try {
      const h = await get<Health>("/api/health");
      health = { ...h, reasons: h.reasons ?? [] };
      noteTick(h.last_tick_ms, h.last_tick_wall_ms);
    } catch {
      /* unreachable: the connection status says so */
      return;
    }
    showHealth();
    // The first forecast: at once, not at the next 30-s turn.
    if (health.forecast_ready && !forecastAsked) {
      forecastAsked = true;
      void loadForecast();
    }
  }
  function hasState(): boolean {
    return model.state != null || (health.last_tick_ms ?? 0) > 0;
  }
  healthTimer = window.setInterval(loadHealth, 5_000);
}

/** What `/api/health` answers (the fields the console reads). */
interface Health {
  status: string;
  reasons: string[];
  codes?: { code: string; [k: string]: unknown }[];
  last_tick_ms?: number | null;
  last_tick_wall_ms?: number | null;
  forecast_ready?: boolean;
}

/** Why a login failed, in the console's language. */
function loginError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.code === "bad_login") return t("badLogin");
    if (err.status === 429) return t("tooManyLogins");
  }
  return (err as Error).message;
}

/** Unanswered safety proposals (stream `alarm`): a banner in the header,
 * a blinking tab title and a short tone, until each is answered. */
class Alarms {
  private open = new Map<string, { device: string; level: number }>();
  private blink: number | undefined;
  constructor(
    private el: HTMLElement,
    private restoreTitle: () => void,
  ) {}
  raise(a: { proposal: string; device: string; device_name?: string; plan?: string | null; plan_name?: string | null; level: number }) {
    const who = a.device_name && a.device_name !== a.device ? `${a.device_name} (${a.device})` : a.device;
    // The plan's name is written in Chinese by the server: in English the
    // plan goes by its id.
    const plan = getLang() === "zh" ? a.plan_name : a.plan;
    this.open.set(a.proposal, { device: plan ? `${who} · ${plan}` : who, level: a.level });
    this.render();
    tone();
  }
  answered(id: string) {
    if (this.open.delete(id)) this.render();
  }
  private render() {
    if (this.open.size === 0) {
      this.el.hidden = true;
      window.clearInterval(this.blink);
      this.blink = undefined;
      this.restoreTitle();
      return;
    }
    const items = [...this.open].map(([id, a]) => `${id} ${model.deviceName(a.device)} (${t("alarmLevel")} ${a.level})`);
    this.el.textContent = `⚠ ${t("alarmUnanswered")}: ${items.join(", ")}`;
    this.el.hidden = false;
    if (this.blink === undefined) {
      let on = false;
      this.blink = window.setInterval(() => {
        on = !on;
        document.title = on ? `⚠ ${t("alarmUnanswered")}` : t("title");
      }, 1000);
    }
  }
}

function tone() {
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator();
    o.frequency.value = 880;
    o.connect(ctx.destination);
    o.start();
    o.stop(ctx.currentTime + 0.25);
  } catch {
    /* no audio here */
  }
}

setLang(getLang());
setUnauthorizedHandler(() => {
  if (currentSession()) {
    sessionStorage.removeItem("zhilu.session");
    showLogin(t("loginFailed"));
  }
});
const existing = loadSession();
if (existing) {
  showConsole(existing).catch(() => showLogin());
} else {
  showLogin();
}
