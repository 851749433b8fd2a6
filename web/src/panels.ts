// Side panels: active events, pending proposals (approve / edit / reject
// for operators and admins only), devices (commanded vs confirmed), the
// audit log (admins, searchable) and the details of whatever is selected.

import { ApiError, currentSession, get, post } from "./api";
import { clock, dirName, kindName, reasonText, stake, t, wall } from "./i18n";
import { dataTime, hhmm } from "./time";
import type { Feature } from "./map";
import { describeSegment } from "./map";
import { type Ev, type ForecastStation, type Proposal, model, speedInColumn } from "./model";
import { speedColour } from "./geo";
import { WhatIf, plannedState } from "./whatif";
import { compareEvents, levelBadge, renderEventCard, renderHandover, workflowTag } from "./flow";
import { decidePlan, planBook, planCard, planWhatIf, stepLine } from "./plans";

export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function canDecide(): boolean {
  const r = currentSession()?.role;
  return r === "operator" || r === "admin";
}

/** A command in words: 限速 60 km/h, 关闭 (上行), the text … */
export function commandText(c: any): string {
  if (!c) return "—";
  switch (c.action) {
    case "speed_limit":
      return c.value == null ? t("posted") : `${c.value} km/h`;
    case "message":
      return c.text ? `“${c.text}”` : "—";
    case "fog_lights":
      return kindName(c.mode);
    case "entry":
      return `${kindName(c.value)}${c.direction ? ` (${dirName(c.direction)})` : ""}`;
    case "deicing":
      return kindName(c.value);
    case "tunnel_plan": {
      // `T1-fire`: the tunnel's plan for a fire (or an incident).
      if (c.value == null) return t("none");
      const v = String(c.value);
      const i = v.lastIndexOf("-");
      return i > 0 ? `${v.slice(0, i)} ${kindName(v.slice(i + 1) === "fire" ? "fire" : "incident")}` : v;
    }
    default:
      return c.value != null ? String(c.value) : JSON.stringify(c);
  }
}

function eventLine(e: Ev): string {
  const ext = Math.abs(e.to_m - e.from_m) > 1 ? `${stake(Math.min(e.from_m, e.to_m))} – ${stake(Math.max(e.from_m, e.to_m))}` : stake(e.from_m);
  return `${kindName(e.kind)} · ${dirName(e.direction)} · ${ext}`;
}

export class Panels {
  readonly el: HTMLElement;
  private tab: "events" | "proposals" | "devices" | "audit" | "handover" = "events";
  private body: HTMLElement;
  private details: HTMLElement;
  private deviceFilter = "";
  private auditQuery = "";
  private auditRows: any[] = [];
  private editing: { id: string; mode: "edit" | "reject" } | null = null;
  private selected: Feature | null = null;
  private whatif = new WhatIf();
  forecast: ForecastStation[] = [];
  forecastIssued = 0;
  forecastMethod = "";
  onFocus: (stakeM: number) => void = () => {};

  constructor(host: HTMLElement) {
    this.el = host;
    host.innerHTML = `
      <div class="tabs" role="tablist"></div>
      <div class="panel-body" role="tabpanel" tabindex="-1"></div>
      <section class="details" aria-live="polite"></section>`;
    this.body = host.querySelector(".panel-body")!;
    this.details = host.querySelector(".details")!;
    // Plans group the pending proposals (web/src/plans.ts).
    planBook.on(() => {
      if (this.tab === "proposals") this.later("body");
    });
    model.on((c) => {
      if (
        (c === "events" && this.tab === "events") ||
        (c === "proposals" && this.tab === "proposals") ||
        ((c === "devices" || c === "actions") && this.tab === "devices")
      ) {
        this.later("body");
      }
      if (c === "proposals" || c === "events") this.later("tabs");
      if (this.selected && (c === "devices" || c === "events" || c === "state" || c === "vehicles")) this.later("details");
    });
  }

  private pending = new Set<"body" | "tabs" | "details">();
  private timer = 0;
  private lastFlush = 0;

  /** Coalesces redraws: devices report many times a second, a list is
   * redrawn at most every 500 ms (proposals at once: they need a hand). */
  private later(what: "body" | "tabs" | "details"): void {
    this.pending.add(what);
    if (this.timer) return;
    const urgent = what !== "details" && this.tab === "proposals";
    const wait = urgent ? 0 : Math.max(0, 500 - (performance.now() - this.lastFlush));
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      this.lastFlush = performance.now();
      const p = [...this.pending];
      this.pending.clear();
      const key = focusKey(document.activeElement);
      if (p.includes("tabs")) this.renderTabs();
      if (p.includes("body")) this.renderBody();
      if (p.includes("details")) this.renderDetailsLive();
      if (key && focusKey(document.activeElement) !== key) {
        (this.el.querySelector(key) as HTMLElement | null)?.focus();
      }
    }, wait);
  }

  render(): void {
    this.renderTabs();
    this.renderBody();
    this.showDetails(this.selected);
  }

  private renderTabs(): void {
    const tabs: [typeof this.tab, string][] = [
      ["events", `${t("events")} (${model.events.size})`],
      ["proposals", `${t("proposals")} (${model.proposals.size})`],
      ["devices", t("devices")],
    ];
    tabs.push(["handover", t("handover")]);
    if (currentSession()?.role === "admin") tabs.push(["audit", t("audit")]);
    const bar = this.el.querySelector(".tabs")!;
    bar.innerHTML = tabs
      .map(
        ([k, label]) =>
          `<button type="button" role="tab" class="tab" data-tab="${k}" aria-selected="${k === this.tab}" id="tab-${k}">${esc(label)}</button>`,
      )
      .join("");
    bar.querySelectorAll<HTMLButtonElement>("button").forEach((b) =>
      b.addEventListener("click", () => {
        this.tab = b.dataset.tab as typeof this.tab;
        this.render();
        if (this.tab === "audit") void this.searchAudit(false);
      }),
    );
  }

  private renderBody(): void {
    // Keep a half-typed reason when the list refreshes.
    const focused = document.activeElement as HTMLElement | null;
    const keep = focused && this.body.contains(focused) && focused.tagName === "INPUT" ? (focused as HTMLInputElement) : null;
    const keepState = keep ? { cls: keep.className, value: keep.value } : null;
    switch (this.tab) {
      case "events":
        this.renderEvents();
        break;
      case "proposals":
        this.renderProposals();
        break;
      case "devices":
        this.renderDevices();
        break;
      case "audit":
        this.renderAudit();
        break;
      case "handover":
        void renderHandover(this.body);
        break;
    }
    if (keepState) {
      const again = this.body.querySelector<HTMLInputElement>(`input.${keepState.cls.split(" ").join(".")}`);
      if (again) {
        again.value = keepState.value;
        again.focus();
      }
    }
  }

  private renderEvents(): void {
    const list = [...model.events.values()].sort(compareEvents);
    if (!list.length) {
      this.body.innerHTML = `<p class="empty">${t("noEvents")}</p>`;
      return;
    }
    this.body.innerHTML = `<ul class="list">${list
      .map(
        (e) => `<li><button type="button" class="item ev-${esc(e.kind)}" data-event="${esc(e.id)}">
          <span class="badge" style="--c:var(--ev-${e.kind.startsWith("hazmat") ? "hazmat" : esc(e.kind)}, #f472b6)">${esc(kindName(e.kind))}</span>
          <span class="main">${levelBadge(e.level)} ${esc(eventLine(e))}${workflowTag(e)}</span>
          <span class="sub">${t("detected")} ${esc(clock(Date.parse(e.detected_at)))} · ${t("rule")}: ${esc(e.evidence?.rule ?? "—")}${
            e.visibility_m != null ? ` · ${t("lowestVisibility")} ${Math.round(e.visibility_m)} m` : ""
          }${e.vehicle ? ` · ${esc(e.vehicle)}` : ""}</span>
        </button></li>`,
      )
      .join("")}</ul>`;
    this.body.querySelectorAll<HTMLButtonElement>("button[data-event]").forEach((b) =>
      b.addEventListener("click", () => {
        const e = model.events.get(b.dataset.event!);
        if (e) this.onFocus((e.from_m + e.to_m) / 2);
        this.showDetails({ type: "event", id: b.dataset.event! });
      }),
    );
  }

  private renderProposals(): void {
    const list = [...model.proposals.values()].sort((a, b) => a.created_ms - b.created_ms);
    const decide = canDecide();
    let html = decide ? "" : `<p class="note">${t("viewerNote")}</p>`;
    if (!list.length) {
      this.body.innerHTML = html + `<p class="empty">${t("noProposals")}</p>`;
      return;
    }
    // One card per pending plan with its pending steps; proposals of no
    // known plan (made before plans existed, or not yet grouped) alone.
    const inPlan = new Set<string>();
    const cards = [...planBook.plans.values()]
      .sort((a, b) => a.created_ms - b.created_ms)
      .map((pl) => {
        const steps = pl.steps.filter((s) => s.status === "pending" && model.proposals.has(s.id)).map((s) => model.proposals.get(s.id)!);
        if (!steps.length) return "";
        steps.forEach((x) => inPlan.add(x.id));
        return planCard(pl, steps.map((x) => this.proposalItem(x, decide)).join(""), decide);
      })
      .join("");
    const loose = list.filter((p) => !inPlan.has(p.id));
    html += `<ul class="list plans">${cards}${loose.map((p) => this.proposalItem(p, decide)).join("")}</ul>`;
    html += `<section class="whatif" aria-label="${esc(t("whatif"))}"></section>`;
    this.body.innerHTML = html;
    const key = list
      .map((p) => p.id)
      .sort()
      .join(",");
    this.whatif.render(this.body.querySelector<HTMLElement>("section.whatif")!, key);
    this.body.querySelectorAll<HTMLButtonElement>("button[data-act]").forEach((b) =>
      b.addEventListener("click", () => void this.act(b.dataset.id!, b.dataset.act!)),
    );
    this.body.querySelectorAll<HTMLFormElement>("form[data-id]").forEach((f) =>
      f.addEventListener("submit", (ev) => {
        ev.preventDefault();
        void this.submitForm(f);
      }),
    );
  }

  private proposalItem(p: Proposal, decide: boolean): string {
    const ev = p.event ? model.events.get(p.event) : undefined;
    const step = planBook.step(p.id);
    const cmd = p.command ?? {};
    let form = "";
    if (decide && this.editing?.id === p.id) {
      const isEdit = this.editing.mode === "edit";
      let input = "";
      if (isEdit) {
        if (cmd.action === "speed_limit") {
          input = `<label>${t("newValue")} <input class="edit-value" type="number" min="20" max="120" step="10" value="${esc(cmd.value ?? "")}" required> km/h</label>`;
        } else if (cmd.action === "entry") {
          input = `<label>${t("newValue")} <select class="edit-value">${["open", "metered", "closed"]
            .map((v) => `<option value="${v}" ${v === cmd.value ? "selected" : ""}>${esc(kindName(v))}</option>`)
            .join("")}</select></label>`;
        } else {
          input = `<label>${t("newValue")} <input class="edit-value" type="text" maxlength="64" value="${esc(cmd.text ?? cmd.value ?? "")}"></label>`;
        }
      }
      form = `<form class="decide-form" data-id="${esc(p.id)}" data-mode="${this.editing.mode}">
        ${input}
        <label>${t("reason")} <input class="reason" type="text" maxlength="500" required aria-describedby="reason-help-${esc(p.id)}"></label>
        <span id="reason-help-${esc(p.id)}" class="help">${t("reasonRequired")}</span>
        ${isEdit && (cmd.action === "speed_limit" || cmd.action === "entry") ? `<button type="button" data-act="whatif-edit" data-id="${esc(p.id)}">${t("whatifEdit")}</button>` : ""}
        <button type="submit" class="primary">${t("confirm")}</button>
        <button type="button" data-act="cancel" data-id="${esc(p.id)}">${t("cancel")}</button>
      </form>`;
    }
    const buttons = decide
      ? `<div class="actions">
          <button type="button" class="primary" data-act="approve" data-id="${esc(p.id)}">${t("approve")}</button>
          <button type="button" data-act="edit" data-id="${esc(p.id)}">${t("edit")}</button>
          <button type="button" class="danger" data-act="reject" data-id="${esc(p.id)}">${t("reject")}</button>
        </div>`
      : "";
    return `<li class="proposal" data-proposal="${esc(p.id)}">
      <div class="main"><b>${esc(p.id)}</b> ${esc(kindName(p.kind))} · ${esc(step?.device_name ?? model.deviceName(p.device))} → <b>${esc(commandText(cmd))}</b></div>
      ${step ? stepLine(step) : ""}
      <div class="sub reason">${esc(reasonText(p.reason_code, p.reason))}${ev ? ` · ${esc(eventLine(ev))}` : p.event ? ` · ${esc(p.event)}` : ""}</div>
      <div class="sub">${t("createdBy")} ${esc(p.at_ms != null ? dataTime(p.at_ms) : wall(p.created_ms))} · ${t("expires")} ${esc(wall(p.expires_ms))}</div>
      ${buttons}${form}
    </li>`;
  }

  private async act(id: string, act: string): Promise<void> {
    if (act === "plan-approve") {
      await this.sendPlan(id, "approve", {});
      return;
    }
    if (act === "plan-whatif") {
      const pl = planBook.plans.get(id);
      if (!pl) return;
      this.whatif.setExtra([planWhatIf(pl, plannedState)]);
      void this.whatif.run();
      return;
    }
    if (act === "cancel") {
      this.editing = null;
      this.whatif.setExtra([]);
      this.renderBody();
      return;
    }
    if (act === "whatif-edit") {
      // The pending proposals as they would be with this one edited.
      const el = this.body.querySelector<HTMLInputElement | HTMLSelectElement>(`form[data-id="${CSS.escape(id)}"] .edit-value`);
      const devices: Record<string, unknown> = {};
      for (const p of model.proposals.values()) {
        let cmd = p.command;
        if (p.id === id && el) cmd = { ...cmd, value: cmd?.action === "speed_limit" ? Number(el.value) : el.value };
        const s = plannedState(p.device, cmd);
        if (s) devices[s[0]] = s[1];
      }
      this.whatif.setExtra([{ name: `${id} ${t("edited")}`, devices }]);
      void this.whatif.run();
      return;
    }
    if (act === "edit" || act === "reject") {
      this.editing = { id, mode: act };
      this.renderBody();
      this.body.querySelector<HTMLInputElement>(`form[data-id="${id}"] .edit-value, form[data-id="${id}"] .reason`)?.focus();
      return;
    }
    const pl = planBook.planOf(id);
    if (pl) await this.sendPlan(pl.id, "approve", { steps: [id] });
    else await this.send(id, "approve", {});
  }

  private async submitForm(f: HTMLFormElement): Promise<void> {
    const id = f.dataset.id!;
    const mode = f.dataset.mode as "edit" | "reject";
    const reason = f.querySelector<HTMLInputElement>(".reason")!.value.trim();
    if (!reason) {
      this.toast(t("reasonRequired"));
      return;
    }
    const body: Record<string, unknown> = { reason };
    if (mode === "edit") {
      const el = f.querySelector<HTMLInputElement | HTMLSelectElement>(".edit-value")!;
      const p = model.proposals.get(id);
      const a = p?.command?.action;
      body.edit = a === "speed_limit" ? { value: Number(el.value) } : a === "entry" ? { value: el.value } : { text: el.value };
    }
    const pl = planBook.planOf(id);
    if (pl) await this.sendPlan(pl.id, mode, mode === "edit" ? { ...body, step: id } : { ...body, steps: [id] });
    else await this.send(id, mode, body);
  }

  private async send(id: string, verb: string, body: Record<string, unknown>): Promise<void> {
    try {
      const p = await post<Proposal>(`/api/proposals/${encodeURIComponent(id)}/${verb}`, body);
      this.editing = null;
      this.whatif.setExtra([]);
      model.apply("proposal", p);
      this.toast(`${p.id}: ${kindName(p.status)}`);
    } catch (e) {
      this.toast(`${t("error")}: ${e instanceof ApiError ? e.message : String(e)}`);
    }
  }

  /** A decision on a plan (all its pending steps, or those listed). */
  private async sendPlan(id: string, verb: "approve" | "reject" | "edit", body: Record<string, unknown>): Promise<void> {
    try {
      const p = await decidePlan(id, verb, body);
      this.editing = null;
      this.whatif.setExtra([]);
      this.toast(`${p.id}: ${kindName(p.status === "closed" ? "closed_plan" : p.status)}`);
      this.renderBody();
    } catch (e) {
      this.toast(`${t("error")}: ${e instanceof ApiError ? e.message : String(e)}`);
    }
  }
  private toastTimer = 0;

  toast(msg: string): void {
    const el = document.querySelector(".toast");
    if (!el) return;
    el.textContent = msg;
    el.classList.add("show");
    window.clearTimeout(this.toastTimer);
    // Gone, text and all, once faded: a stale message is not left in the
    // page (nor in the language it was said in).
    this.toastTimer = window.setTimeout(() => {
      el.classList.remove("show");
      this.toastTimer = window.setTimeout(() => (el.textContent = ""), 300);
    }, 4000);
  }

  private renderDevices(): void {
    const kinds = ["", "vsl", "vms", "fog_lights", "deicer", "interchange", "tunnel", "detector", "weather", "service_area"];
    const faults = new Map<string, number>();
    for (const e of model.events.values()) {
      if (e.kind === "detector_fault") {
        const d = (e.detector as string) ?? e.evidence?.detectors?.[0];
        if (d) faults.set(d, (faults.get(d) ?? 0) + 1);
      }
    }
    const rows = [...model.devices.values()].filter((d) => !this.deviceFilter || model.deviceKind.get(d.device) === this.deviceFilter);
    rows.sort((a, b) => (faults.get(b.device) ?? 0) - (faults.get(a.device) ?? 0) || Number(a.online) - Number(b.online) || a.device.localeCompare(b.device));
    this.body.innerHTML = `
      <label class="filter">${t("kind")} <select class="device-kind">${kinds
        .map((k) => `<option value="${k}" ${k === this.deviceFilter ? "selected" : ""}>${k ? esc(kindName(k)) : t("all")}</option>`)
        .join("")}</select></label>
      <table class="devices"><thead><tr><th scope="col">${t("device")}</th><th scope="col">${t("commanded")}</th><th scope="col">${t("confirmed")}</th><th scope="col">${t("status")}</th><th scope="col">${t("lastContact")}</th></tr></thead>
      <tbody>${rows
        .slice(0, 400)
        .map((d) => {
          const cmd = d.pending ?? model.lastCommand(d.device);
          const f = faults.get(d.device);
          return `<tr data-device="${esc(d.device)}"><td><button type="button" class="link" data-device="${esc(d.device)}">${esc(model.deviceName(d.device))}</button><br><span class="sub">${esc(kindName(model.deviceKind.get(d.device)))}</span></td>
            <td>${esc(commandText(cmd))}${d.pending ? ` <span class="pending">(${t("pending")})</span>` : ""}</td>
            <td>${esc(d.state && !d.state.blank ? commandText(d.state) : "—")}</td>
            <td>${d.online ? `<span class="ok">${t("online")}</span>` : `<span class="bad">${t("offline")}</span>`}${f ? ` <span class="bad">${t("faults")}: ${f}</span>` : ""}</td>
            <td>${esc(wall(d.last_seen_ms))}</td></tr>`;
        })
        .join("")}</tbody></table>`;
    this.body.querySelector<HTMLSelectElement>(".device-kind")!.addEventListener("change", (e) => {
      this.deviceFilter = (e.target as HTMLSelectElement).value;
      this.renderDevices();
    });
    this.body.querySelectorAll<HTMLButtonElement>("button[data-device]").forEach((b) =>
      b.addEventListener("click", () => {
        const id = b.dataset.device!;
        const s = deviceStake(id);
        if (s != null) this.onFocus(s);
        this.showDetails({ type: "device", id, kind: model.deviceKind.get(id) ?? "" });
      }),
    );
  }

  private renderAudit(): void {
    this.body.innerHTML = `
      <form class="audit-search" role="search">
        <label class="sr-only" for="audit-q">${t("searchAudit")}</label>
        <input id="audit-q" class="audit-q" type="search" placeholder="${esc(t("searchAudit"))}" value="${esc(this.auditQuery)}">
        <button type="submit">${t("search")}</button>
      </form>
      <table class="audit"><thead><tr><th scope="col">${t("time")}</th><th scope="col">${t("actor")}</th><th scope="col">${t("action")}</th><th scope="col">${t("target")}</th></tr></thead>
      <tbody>${this.auditRows
        .map(
          (a) => `<tr title="${esc(JSON.stringify(a.detail))}"><td>${stamp(wall(a.wall_ms))}</td><td>${esc(a.actor === "system" || a.actor === "cli" ? kindName(`actor.${a.actor}`) : a.actor)}</td><td>${esc(kindName(a.action))}</td><td>${esc(model.deviceName(a.target))}<br><span class="sub">${esc(
            summarizeDetail(a.detail),
          )}</span></td></tr>`,
        )
        .join("")}</tbody></table>
      ${this.auditRows.length >= 100 ? `<button type="button" class="audit-more">${t("more")}</button>` : ""}`;
    this.body.querySelector("form")!.addEventListener("submit", (e) => {
      e.preventDefault();
      this.auditQuery = this.body.querySelector<HTMLInputElement>(".audit-q")!.value;
      void this.searchAudit(false);
    });
    this.body.querySelector(".audit-more")?.addEventListener("click", () => void this.searchAudit(true));
  }

  private async searchAudit(more: boolean): Promise<void> {
    const q = new URLSearchParams({ q: this.auditQuery, limit: "100" });
    if (more && this.auditRows.length) q.set("before", String(this.auditRows[this.auditRows.length - 1].seq));
    try {
      const rows = await get<any[]>(`/api/audit?${q}`);
      this.auditRows = more ? this.auditRows.concat(rows) : rows;
    } catch (e) {
      this.toast(`${t("error")}: ${(e as Error).message}`);
    }
    if (this.tab === "audit") this.renderAudit();
  }

  // ------------------------------------------------------------ details

  showDetails(f: Feature | null): void {
    this.selected = f;
    // A new selection starts without the last one's history (a live
    // refresh of the same one keeps it).
    this.details.innerHTML = "";
    this.renderDetailsLive();
    if (f?.type === "event") void this.loadEventHistory(f.id);
    if (f?.type === "device") void this.loadDeviceHistory(f.id);
  }

  private renderDetailsLive(): void {
    const f = this.selected;
    const d = this.details;
    if (!f) {
      d.innerHTML = "";
      return;
    }
    let html = `<h2>${t("details")}</h2>`;
    switch (f.type) {
      case "segment": {
        const v = model.speedAt(f.direction, (f.from_m + f.to_m) / 2);
        html += `<p><b>${t("segment")}</b> ${dirName(f.direction)} ${esc(describeSegment(f))}</p>
          <p>${t("speed")}: <b>${v == null ? t("noData") : `${Math.round(v)} km/h`}</b> · ${t("flow")}: ${f.flow ?? "—"} veh/h · ${t("density")}: ${f.density ?? "—"} veh/km</p>`;
        const mid = (f.from_m + f.to_m) / 2;
        html += this.forecastChart(this.nearestStation(f.direction, mid) ?? bareStation(f.direction, mid));
        break;
      }
      case "station": {
        const det = model.road.detectors.find((x) => x.id === f.id);
        html += `<p><b>${t("station")}</b> ${esc(f.id)} · ${det ? `${dirName(det.direction)} ${stake(det.stake_m)}` : ""}</p>`;
        const st = this.forecast.find((x) => x.detector === f.id);
        if (st) html += this.forecastChart(st);
        else if (det) html += this.forecastChart(bareStation(det.direction, det.stake_m, det.id));
        break;
      }
      case "device": {
        const dev = model.devices.get(f.id);
        const s = deviceStake(f.id);
        const name = model.deviceName(f.id);
        html += `<p><b>${esc(kindName(f.kind || model.deviceKind.get(f.id)))}</b> ${esc(name)}${name !== f.id ? ` (${esc(f.id)})` : ""}${s != null ? ` · ${stake(s)}` : ""}</p>
          <dl>
            <dt>${t("confirmed")}</dt><dd class="confirmed-state">${esc(dev?.state && !dev.state.blank ? commandText(dev.state) : "—")}</dd>
            <dt>${t("commanded")}</dt><dd>${esc(commandText(dev?.pending ?? model.lastCommand(f.id)))}${dev?.pending ? ` (${t("pending")})` : ""}</dd>
            <dt>${t("status")}</dt><dd>${dev?.online ? t("online") : t("offline")}</dd>
            <dt>${t("lastContact")}</dt><dd>${esc(wall(dev?.last_seen_ms))}</dd>
          </dl>`;
        if (f.kind === "interchange") {
          const ic = model.road.interchanges.find((x) => x.id === f.id);
          html += `<p>${(ic?.directions ?? [])
            .map((dir) => {
              const e = model.entryState(f.id, dir);
              return `${dirName(dir)}: <b class="entry-${esc(dir)}">${esc(kindName(e.value))}</b>${e.confirmed ? "" : ` (${t("commanded")})`}`;
            })
            .join(" · ")}</p>`;
        }
        html += `<div class="device-history"></div>`;
        break;
      }
      case "event": {
        const e = model.events.get(f.id);
        if (e) {
          html += `<p><b>${esc(kindName(e.kind))}</b> ${esc(e.id)} · ${t("severity")} ${levelBadge(e.level)}</p>
            <dl>
              <dt>${t("extent")}</dt><dd>${esc(dirName(e.direction))} ${esc(stake(Math.min(e.from_m, e.to_m)))} – ${esc(stake(Math.max(e.from_m, e.to_m)))}</dd>
              <dt>${t("started")}</dt><dd>${esc(clock(Date.parse(e.start), true))}</dd>
              <dt>${t("detected")}</dt><dd>${esc(clock(Date.parse(e.detected_at), true))}</dd>
              <dt>${t("rule")}</dt><dd>${esc(e.evidence?.rule ?? "—")}</dd>
              <dt>${t("evidence")}</dt><dd>${esc((e.evidence?.detectors ?? []).join(", ") || "—")}</dd>
              ${e.visibility_m != null ? `<dt>${t("lowestVisibility")}</dt><dd>${Math.round(e.visibility_m)} m</dd>` : ""}
              ${e.surface_temp_c != null ? `<dt>${t("surfaceTemp")}</dt><dd>${e.surface_temp_c} °C</dd>` : ""}
              ${e.vehicle ? `<dt>${t("vehicle")}</dt><dd>${esc(e.vehicle)}</dd>` : ""}
            </dl>`;
        } else {
          html += `<p>${esc(f.id)} · ${t("ended")}</p>`;
        }
        html += `<div class="event-history"></div>`;
        break;
      }
      case "vehicle": {
        const v = model.vehicles.get(f.id);
        if (v) {
          html += `<p><b>${t("vehicle")}</b> ${esc(v[0])} · ${esc(kindName(v[1]))}</p>
            <dl>
              <dt>${t("extent")}</dt><dd>${esc(dirName(v[6]))} ${esc(stake(v[5]))}</dd>
              <dt>${t("speed")}</dt><dd>${v[7] == null ? "—" : `${Math.round(v[7])} km/h`}</dd>
              <dt>${t("time")}</dt><dd>${esc(clock(v[2], true))}</dd>
              <dt>${t("track")}</dt><dd>${model.tracks.get(v[0])?.length ?? 0}</dd>
            </dl>`;
          const evs = [...model.events.values()].filter((e) => e.vehicle === v[0]);
          if (evs.length) html += `<p>${evs.map((e) => `<span class="badge">${esc(kindName(e.kind))}</span>`).join(" ")}</p>`;
        }
        break;
      }
    }
    // Keep the fetched history (and the event card's controls, with what
    // is typed in them) while refreshing the live part.
    const old = d.querySelector(".event-history, .device-history");
    const focused = old?.contains(document.activeElement) ? (document.activeElement as HTMLElement) : null;
    d.innerHTML = html;
    const h = d.querySelector(".event-history, .device-history");
    if (h && old && h.className === old.className) {
      h.replaceWith(old);
      focused?.focus();
    }
  }

  private async loadEventHistory(id: string): Promise<void> {
    const h = this.details.querySelector<HTMLElement>(".event-history");
    if (!h) return;
    try {
      // The card: workflow actions, basis, lanes, plan, notes, history (flow.ts).
      await renderEventCard(h, id, () => this.later("body"));
    } catch {
      /* shown as ended */
    }
  }

  private async loadDeviceHistory(id: string): Promise<void> {
    // Only commands that were sent: a proposal's record (mode `confirm`,
    // `applied: false`) never reads as applied.
    const acts = model.actions.filter((a) => a.command?.device === id && a.mode !== "confirm" && (a as { applied?: boolean }).applied !== false).slice(0, 20);
    const h = this.details.querySelector(".device-history");
    if (h)
      h.innerHTML = `<h3>${t("history")}</h3><ul class="hist">${
        acts.length
          ? acts
              .map(
                (a) =>
                  `<li>${esc(a.command?.at ? clock(Date.parse(a.command.at), true) : wall(a.wall_ms))} · ${esc(commandText(a.command))}${a.mode ? ` · ${esc(kindName(`mode.${a.mode}`))}` : ""}${a.command?.reason ? `<br><span class="sub reason">${esc(reasonText(a.command.reason_code, a.command.reason))}</span>` : ""}</li>`,
              )
              .join("")
          : `<li>${t("none")}</li>`
      }</ul>`;
  }

  private nearestStation(direction: string, s: number): ForecastStation | null {
    let best: ForecastStation | null = null;
    for (const f of this.forecast) {
      if (f.direction !== direction) continue;
      if (!best || Math.abs(f.stake_m - s) < Math.abs(best.stake_m - s)) best = f;
    }
    return best;
  }

  /** A station's speed over the last two hours and the forecast with its band (SVG). */
  private forecastChart(st: ForecastStation): string {
    const W = 300;
    const H = 120;
    const bare = st.speed_kmh.length === 0;
    const now = bare ? (model.state?.ts_ms ?? Date.now()) : this.forecastIssued;
    const t0 = now - 2 * 3600_000;
    const t1 = now + 3600_000;
    const x = (tm: number) => ((tm - t0) / (t1 - t0)) * (W - 30) + 26;
    const y = (v: number) => H - 14 - (Math.max(0, Math.min(130, v)) / 130) * (H - 24);
    // history at this station's stake from the live columns
    const hist: string[] = [];
    for (const col of model.columns) {
      if (col.t1 < t0) continue;
      const v = speedInColumn(col, st.direction, st.stake_m);
      if (v != null) hist.push(`${x((col.t0 + col.t1) / 2).toFixed(1)},${y(v).toFixed(1)}`);
    }
    const hz = st.speed_kmh.map((_, h) => now + (h + 1) * 300_000);
    const band: string[] = [];
    hz.forEach((tm, h) => {
      const u = st.upper_kmh[h];
      if (u != null) band.push(`${x(tm).toFixed(1)},${y(u).toFixed(1)}`);
    });
    [...hz].reverse().forEach((tm, r) => {
      const l = st.lower_kmh[hz.length - 1 - r];
      if (l != null) band.push(`${x(tm).toFixed(1)},${y(l).toFixed(1)}`);
    });
    const fc = hz
      .map((tm, h) => (st.speed_kmh[h] == null ? "" : `${x(tm).toFixed(1)},${y(st.speed_kmh[h]!).toFixed(1)}`))
      .filter(Boolean);
    const ticks = [0, 40, 80, 120]
      .map((v) => `<text x="2" y="${y(v) + 4}" class="axis">${v}</text><line x1="26" x2="${W - 4}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`)
      .join("");
    return `<figure class="forecast" aria-label="${esc(`${t("forecast")} ${st.detector}`)}">
      <figcaption>${bare ? `${t("history")} · ${esc(stake(st.stake_m))} · ${t("noForecast")}` : `${t("forecast")} · ${esc(st.detector)} ${esc(stake(st.stake_m))} · ${esc(kindName(`method.${this.forecastMethod}`))} · ${t("forecastBand")}`}</figcaption>
      <svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">
        ${ticks}
        <polygon points="${band.join(" ")}" class="band"/>
        <polyline points="${hist.join(" ")}" class="hist-line"/>
        <polyline points="${fc.join(" ")}" class="fc-line"/>
        <line x1="${x(now)}" x2="${x(now)}" y1="4" y2="${H - 14}" class="now"/>
        <text x="${x(now) - 10}" y="${H - 2}" class="axis">${esc(hhmm(now))}</text>
        ${st.last_speed_kmh == null ? "" : `<circle cx="${x(now)}" cy="${y(st.last_speed_kmh)}" r="3" fill="${speedColour(st.last_speed_kmh)}"/>`}
      </svg></figure>`;
  }
}

/** A station without a forecast (the chart then shows the history only). */
function bareStation(direction: string, stakeM: number, id = ""): ForecastStation {
  return { detector: id, direction, stake_m: stakeM, last_speed_kmh: null, speed_kmh: [], lower_kmh: [], upper_kmh: [] };
}

/** A selector that finds a control again after a redraw, so that the
 * keyboard focus survives live updates. */
function focusKey(e: Element | null): string | null {
  if (!(e instanceof HTMLElement)) return null;
  const d = e.dataset;
  const q = (v: string) => CSS.escape(v);
  if (d.tab) return `[data-tab="${q(d.tab)}"]`;
  if (d.act && d.id) return `[data-act="${q(d.act)}"][data-id="${q(d.id)}"]`;
  if (d.device) return `button[data-device="${q(d.device)}"]`;
  if (d.event) return `[data-event="${q(d.event)}"]`;
  if (e.classList.contains("whatif-run")) return "button.whatif-run";
  return null;
}

/** A time in a narrow column: date and clock each kept whole, the line
 * broken only between them (the text stays `2026-12-08 07:25:40`). */
function stamp(time: string): string {
  const [d, c] = time.split(" ");
  return c ? `<span class="nw">${esc(d)}</span> <span class="nw">${esc(c)}</span>` : esc(time);
}

/** An audit entry's detail in words: the brain's reason from its code, an
 * operator's reason as typed (in “…”), commands, roles, deadlines. */
function summarizeDetail(d: any): string {
  if (!d || typeof d !== "object") return "";
  const parts: string[] = [];
  const code = d.reason_code ?? d.command?.reason_code;
  if (code) parts.push(reasonText(code, d.reason));
  else if (d.reason) parts.push(`“${d.reason}”`);
  const cmd = d.applied ?? d.command;
  if (cmd) parts.push(commandText(cmd));
  if (d.role) parts.push(kindName(d.role));
  if (d.disabled === true) parts.push(kindName("user.disable"));
  if (d.by) parts.push(String(d.by));
  if (d.expires_wall_ms) parts.push(`${t("expires")} ${wall(d.expires_wall_ms)}`);
  if (d.next_wall_ms) parts.push(`${t("expires")} ${wall(d.next_wall_ms)}`);
  if (d.level != null) parts.push(`${t("alarmLevel")} ${d.level}`);
  return parts.join(" · ");
}

export function deviceStake(id: string): number | null {
  const r = model.road;
  const f =
    r.vsl.find((x) => x.id === id) ??
    r.vms.find((x) => x.id === id) ??
    r.detectors.find((x) => x.id === id) ??
    r.weather.find((x) => x.id === id) ??
    r.interchanges.find((x) => x.id === id) ??
    r.service_areas.find((x) => x.id === id);
  if (f) return f.stake_m;
  const z = r.fog_lights.find((x) => x.id === id) ?? r.deicers.find((x) => x.id === id) ?? r.tunnels.find((x) => x.id === id);
  return z ? (z.from_m + z.to_m) / 2 : null;
}
