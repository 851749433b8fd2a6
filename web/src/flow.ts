// The operator's side of events (issue 17): severity badges and the list's
// order, the event card (workflow actions, notes, blocked lanes, the plan's
// proposals, the legal basis, a history of changes) and the shift handover
// (交接班) with its printable sheet.

import "./flow.css";
import { ApiError, currentSession, get, post } from "./api";
import { type Key, clock, dirName, eventBasis, kindName, stake, t, wall } from "./i18n";
import type { Ev } from "./model";

function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function canAct(): boolean {
  const r = currentSession()?.role;
  return r === "operator" || r === "admin";
}

/** Severity classes, worst first (the server's `level`). */
export const LEVELS = ["critical", "major", "minor", "info"] as const;

export function levelRank(l: unknown): number {
  const i = LEVELS.indexOf(l as (typeof LEVELS)[number]);
  return i < 0 ? LEVELS.length : i;
}

export function levelName(l: unknown): string {
  const i = levelRank(l);
  return i < LEVELS.length ? t(`level_${LEVELS[i]}` as Key) : "—";
}

/** The event list's order: worst class first, then the newest. */
export function compareEvents(a: Ev, b: Ev): number {
  return levelRank(a.level) - levelRank(b.level) || Date.parse(b.detected_at) - Date.parse(a.detected_at);
}

/** A severity badge. */
export function levelBadge(l: unknown): string {
  const k = LEVELS[levelRank(l)] ?? "none";
  return `<span class="lvl lvl-${k}" data-level="${esc(k)}">${esc(levelName(l))}</span>`;
}

function statusName(s: unknown): string {
  if (s === "acknowledged") return t("wfAcknowledged");
  if (s === "closed") return t("wfClosed");
  return t("wfOpen");
}

/** The workflow chip of a list line (nothing while untouched). */
export function workflowTag(e: Ev): string {
  const w = e.workflow as Workflow | undefined;
  if (!w || w.status === "open") return w?.assigned_to ? ` · ${t("assignedTo")} ${esc(w.assigned_to)}` : "";
  return ` · <span class="wf wf-${esc(w.status)}">${esc(statusName(w.status))}</span>${w.assigned_to ? ` · ${t("assignedTo")} ${esc(w.assigned_to)}` : ""}`;
}

interface Workflow {
  status: string;
  acked_by: string | null;
  assigned_to: string | null;
  assigned_by: string | null;
  closed_by: string | null;
  close_reason: string | null;
  closed_ms: number | null;
}

interface Change {
  at_ms: number;
  wall_ms: number;
  change: string;
  by: string | null;
  text: string | null;
  level: string | null;
  what: string[];
}

interface Life {
  basis: string;
  changes: Change[];
  event: Ev;
  lanes: { detector: string; blocked: number[]; lanes: number; ts_ms: number }[];
  notes: { author: string; text: string; wall_ms: number }[];
  proposals: { id: string; device: string; kind: string; status: string; command: any; reason: string }[];
  workflow: Workflow;
}

function changeName(c: string): string {
  const k = `ch_${c}` as Key;
  const s = t(k);
  return s ?? c;
}

function commandWords(c: any): string {
  if (!c) return "—";
  if (c.action === "speed_limit") return c.value == null ? t("posted") : `${c.value} km/h`;
  if (c.action === "message") return c.text ? `“${c.text}”` : "—";
  if (c.action === "entry") return `${kindName(c.value)}${c.direction ? ` (${dirName(c.direction)})` : ""}`;
  if (c.mode) return kindName(c.mode);
  return c.value != null ? kindName(String(c.value)) : "—";
}

/** The event card's operator part: where it stands, what to do, why
 * (basis), the lanes, the plan, the notes and the history. `done` runs
 * after a step so the caller redraws. */
export async function renderEventCard(host: HTMLElement, id: string, done: () => void): Promise<void> {
  const r = await get<Life>(`/api/events/${encodeURIComponent(id)}`);
  const w = r.workflow;
  const act = canAct();
  const closed = w.status === "closed";
  let html = `<div class="flow-card" data-event-card="${esc(id)}">
    <p class="flow-status">${levelBadge(r.event.level)} <span class="wf wf-${esc(w.status)}">${esc(statusName(w.status))}</span>${
      w.acked_by ? ` · ${t("ackedBy")} ${esc(w.acked_by)}` : ""
    }${w.assigned_to ? ` · ${t("assignedTo")} ${esc(w.assigned_to)}` : ""}${
      closed ? ` · ${t("closedBy")} ${esc(w.closed_by)}: ${esc(w.close_reason)}` : ""
    }${closed && !r.event.end ? ` <span class="flow-still">(${t("stillDetected")})</span>` : ""}</p>
    <dl><dt>${t("legalBasis")}</dt><dd class="flow-basis">${esc(eventBasis(r.event.kind, r.basis))}</dd></dl>`;
  if (r.event.kind === "incident") {
    html += `<dl><dt>${t("lanesBlocked")}</dt><dd class="flow-lanes">${
      r.lanes.length
        ? r.lanes
            .map((l) => `${esc(l.detector)}: ${l.blocked.length ? l.blocked.map((n) => `${t("lane")} ${n}`).join(", ") : t("none")} / ${l.lanes}`)
            .join(" · ")
        : t("none")
    }</dd></dl>`;
  }
  html += `<h3>${t("plan")}</h3>${
    r.proposals.length
      ? `<ul class="hist flow-plan">${r.proposals
          .map((p) => `<li>${esc(p.id)} · ${esc(p.device)} · ${esc(commandWords(p.command))} · ${esc(kindName(p.status === "pending" ? "pending_s" : p.status))}</li>`)
          .join("")}</ul>`
      : `<p class="empty">${t("none")}</p>`
  }`;
  if (act) {
    html += `<div class="flow-actions">
      <button type="button" class="flow-ack" data-act="flow-ack" data-id="${esc(id)}" ${w.acked_by || closed ? "disabled" : ""}>${t("ack")}</button>
      <label>${t("assignTo")} <input id="flow-assign-user" class="flow-assign-user" autocomplete="off" ${closed ? "disabled" : ""}></label>
      <button type="button" class="flow-assign" data-act="flow-assign" data-id="${esc(id)}" ${closed ? "disabled" : ""}>${t("assign")}</button>
      <label class="flow-wide">${t("note")} <textarea id="flow-note" class="flow-note" rows="2"></textarea></label>
      <button type="button" class="flow-add-note" data-act="flow-note" data-id="${esc(id)}">${t("addNote")}</button>
      <label class="flow-wide">${t("closeReason")} <input id="flow-close-reason" class="flow-close-reason" autocomplete="off" ${closed ? "disabled" : ""}></label>
      <button type="button" class="flow-close" data-act="flow-close" data-id="${esc(id)}" ${closed ? "disabled" : ""}>${t("closeEvent")}</button>
      <p class="flow-msg" role="status"></p>
    </div>`;
  }
  html += `<h3>${t("notes")}</h3>${
    r.notes.length
      ? `<ul class="hist flow-notes">${r.notes.map((n) => `<li>${esc(wall(n.wall_ms))} · ${esc(n.author)}: ${esc(n.text)}</li>`).join("")}</ul>`
      : `<p class="empty">${t("none")}</p>`
  }`;
  html += `<h3>${t("history")}</h3><ul class="hist flow-history">${r.changes
    .map((c) => {
      const what = c.what.length ? ` (${c.what.map((x) => t(`w_${x}` as Key) ?? x).join(", ")})` : "";
      const who = c.by ? ` · ${esc(c.by)}` : "";
      const text = c.text ? `: ${esc(c.text)}` : "";
      const lvl = c.level ? ` ${levelBadge(c.level)}` : "";
      return `<li data-change="${esc(c.change)}">${esc(clock(c.at_ms, true))} · ${esc(changeName(c.change))}${esc(what)}${lvl}${who}${text}</li>`;
    })
    .join("")}</ul></div>`;
  host.innerHTML = html;
  if (!act) return;
  const msg = host.querySelector<HTMLElement>(".flow-msg")!;
  const step = async (path: string, body: unknown) => {
    try {
      const a = await post<{ warning: string | null }>(`/api/events/${encodeURIComponent(id)}/${path}`, body);
      await renderEventCard(host, id, done);
      const m = host.querySelector<HTMLElement>(".flow-msg");
      if (m) m.textContent = a.warning ? t("stillDetectedLong") : t("saved");
      done();
    } catch (e) {
      msg.textContent = `${t("error")}: ${e instanceof ApiError ? e.message : String(e)}`;
    }
  };
  const val = (sel: string) => host.querySelector<HTMLInputElement | HTMLTextAreaElement>(sel)?.value.trim() ?? "";
  host.querySelector(".flow-ack")?.addEventListener("click", () => void step("ack", {}));
  host.querySelector(".flow-assign")?.addEventListener("click", () => void step("assign", { user: val(".flow-assign-user") }));
  host.querySelector(".flow-add-note")?.addEventListener("click", () => {
    if (!val(".flow-note")) {
      msg.textContent = t("noteRequired");
      return;
    }
    void step("note", { text: val(".flow-note") });
  });
  host.querySelector(".flow-close")?.addEventListener("click", () => {
    if (!val(".flow-close-reason")) {
      msg.textContent = t("closeReasonRequired");
      return;
    }
    void step("close", { reason: val(".flow-close-reason") });
  });
}

// ------------------------------------------------------------ handover

interface LogEvent {
  id: string;
  kind: string;
  level: string;
  direction: string;
  from_m: number;
  to_m: number;
  at_ms: number;
  wall_ms: number;
}

interface ShiftLog {
  from_ms: number;
  until_ms: number;
  opened: LogEvent[];
  ended: LogEvent[];
  faults: LogEvent[];
  steps: { by: string; change: string; event: string; text: string | null; wall_ms: number }[];
  decisions: { id: string; device: string; status: string; decided_by: string | null; decision_reason: string | null; command: any }[];
  pending: { id: string; device: string; command: any; event: string | null }[];
  open_now: Ev[];
  devices_offline: string[];
}

interface Handover {
  id: string;
  from_ms: number;
  signed_ms: number;
  signed_by: string;
  note: string;
  acked_by: string | null;
  acked_ms: number | null;
  ack_note: string | null;
  log: ShiftLog | null;
}

function extent(e: { from_m: number; to_m: number }): string {
  const lo = Math.min(e.from_m, e.to_m);
  const hi = Math.max(e.from_m, e.to_m);
  return hi - lo > 1 ? `${stake(lo)} – ${stake(hi)}` : stake(lo);
}

function logEvents(list: LogEvent[]): string {
  if (!list.length) return `<p class="empty">${t("none")}</p>`;
  return `<table class="flow-table"><tbody>${list
    .map(
      (e) =>
        `<tr><td>${esc(clock(e.at_ms, true))}</td><td>${esc(e.id)}</td><td>${levelBadge(e.level)}</td><td>${esc(kindName(e.kind))}</td><td>${esc(dirName(e.direction))} ${esc(extent(e))}</td></tr>`,
    )
    .join("")}</tbody></table>`;
}

/** The shift's log as a sheet (on screen and on paper). */
function sheet(log: ShiftLog, h: Handover | null): string {
  const sec = (k: Key, body: string) => `<section><h3>${t(k)}</h3>${body}</section>`;
  const none = `<p class="empty">${t("none")}</p>`;
  return `<div class="handover-sheet">
    <h2>${t("shiftLog")}</h2>
    <p class="flow-period">${esc(log.from_ms ? wall(log.from_ms) : t("sinceStart"))} – ${esc(wall(log.until_ms))}</p>
    ${
      h
        ? `<p class="flow-signed">${t("signedBy")} <b>${esc(h.signed_by)}</b> ${esc(wall(h.signed_ms))}${h.note ? `: ${esc(h.note)}` : ""}<br>${
            h.acked_by ? `${t("ackedBy")} <b>${esc(h.acked_by)}</b> ${esc(wall(h.acked_ms))}${h.ack_note ? `: ${esc(h.ack_note)}` : ""}` : t("notAcked")
          }</p>`
        : ""
    }
    ${sec(
      "openNow",
      log.open_now.length
        ? `<table class="flow-table"><tbody>${log.open_now
            .map((e) => {
              const w = e.workflow as Workflow | undefined;
              return `<tr><td>${esc(e.id)}</td><td>${levelBadge(e.level)}</td><td>${esc(kindName(e.kind))}</td><td>${esc(dirName(e.direction))} ${esc(extent(e))}</td><td>${esc(statusName(w?.status))}${w?.assigned_to ? ` · ${esc(w.assigned_to)}` : ""}</td></tr>`;
            })
            .join("")}</tbody></table>`
        : none,
    )}
    ${sec(
      "pendingNow",
      log.pending.length ? `<ul class="hist">${log.pending.map((p) => `<li>${esc(p.id)} · ${esc(p.device)} · ${esc(commandWords(p.command))}${p.event ? ` · ${esc(p.event)}` : ""}</li>`).join("")}</ul>` : none,
    )}
    ${sec("eventsOpened", logEvents(log.opened))}
    ${sec("eventsEnded", logEvents(log.ended))}
    ${sec("shiftFaults", logEvents(log.faults))}
    ${sec(
      "steps",
      log.steps.length
        ? `<ul class="hist flow-steps">${log.steps
            .map((s) => `<li>${esc(wall(s.wall_ms))} · ${esc(s.event)} · ${esc(changeName(s.change))} · ${esc(s.by)}${s.text ? `: ${esc(s.text)}` : ""}</li>`)
            .join("")}</ul>`
        : none,
    )}
    ${sec(
      "decisions",
      log.decisions.length
        ? `<ul class="hist">${log.decisions
            .map((d) => `<li>${esc(d.id)} · ${esc(d.device)} · ${esc(commandWords(d.command))} · ${esc(kindName(d.status))}${d.decided_by ? ` · ${esc(d.decided_by)}` : ""}${d.decision_reason ? `: ${esc(d.decision_reason)}` : ""}</li>`)
            .join("")}</ul>`
        : none,
    )}
    ${sec("devicesOffline", log.devices_offline.length ? `<p>${log.devices_offline.map(esc).join(", ")}</p>` : none)}
  </div>`;
}

/** The handover tab: the last handover (acknowledge it when it waits),
 * the log of this shift, sign it, print it. */
export async function renderHandover(host: HTMLElement): Promise<void> {
  let now: { last: Handover | null; log: ShiftLog };
  try {
    now = await get(`/api/handover`);
  } catch (e) {
    host.innerHTML = `<p class="error">${t("error")}: ${esc((e as Error).message)}</p>`;
    return;
  }
  const me = currentSession()?.user;
  const act = canAct();
  const last = now.last;
  let html = `<div class="flow-handover">`;
  if (last) {
    html += `<p class="flow-last">${t("lastHandover")} <b>${esc(last.id)}</b> · ${t("signedBy")} ${esc(last.signed_by)} ${esc(wall(last.signed_ms))}${
      last.note ? `: ${esc(last.note)}` : ""
    } · ${last.acked_by ? `${t("ackedBy")} ${esc(last.acked_by)} ${esc(wall(last.acked_ms))}` : `<b>${t("notAcked")}</b>`}</p>`;
    if (act && !last.acked_by && last.signed_by !== me) {
      html += `<div class="flow-actions"><label class="flow-wide">${t("ackNote")} <input id="flow-ack-note" class="flow-ack-note" autocomplete="off"></label>
        <button type="button" class="flow-ack-handover primary" data-act="flow-ack-handover" data-id="${esc(last.id)}">${t("ackHandover")}</button></div>`;
    }
  }
  html += sheet(now.log, null);
  html += `<div class="flow-actions">`;
  if (act)
    html += `<label class="flow-wide">${t("handoverNote")} <textarea id="flow-handover-note" class="flow-handover-note" rows="2"></textarea></label>
      <button type="button" class="flow-sign primary" data-act="flow-sign" data-id="sign">${t("signHandover")}</button>`;
  html += `<button type="button" class="flow-print" data-act="flow-print" data-id="print">${t("printHandover")}</button>
    <p class="flow-msg" role="status"></p></div></div>`;
  // A refresh keeps what the operator is typing (and where), so a note is
  // never lost to the next tick's re-render.
  const kept = [".flow-ack-note", ".flow-handover-note"].map((q) => {
    const el = host.querySelector<HTMLInputElement | HTMLTextAreaElement>(q);
    return { q, value: el?.value ?? "", focused: el != null && el === document.activeElement };
  });
  host.innerHTML = html;
  for (const k of kept) {
    const el = host.querySelector<HTMLInputElement | HTMLTextAreaElement>(k.q);
    if (!el) continue;
    if (k.value) el.value = k.value;
    if (k.focused) el.focus();
  }
  const msg = host.querySelector<HTMLElement>(".flow-msg")!;
  const fail = (e: unknown) => (msg.textContent = `${t("error")}: ${e instanceof ApiError ? e.message : String(e)}`);
  host.querySelector(".flow-print")?.addEventListener("click", () => printSheet(host.querySelector(".handover-sheet")!.outerHTML));
  host.querySelector(".flow-sign")?.addEventListener("click", async () => {
    const note = host.querySelector<HTMLTextAreaElement>(".flow-handover-note")?.value.trim() ?? "";
    try {
      const h = await post<Handover>(`/api/handover/sign`, { note });
      const box = host.querySelector<HTMLTextAreaElement>(".flow-handover-note");
      if (box) box.value = "";
      await renderHandover(host);
      const m = host.querySelector<HTMLElement>(".flow-msg");
      if (m) m.textContent = `${t("signed")} ${h.id}`;
    } catch (e) {
      fail(e);
    }
  });
  host.querySelector(".flow-ack-handover")?.addEventListener("click", async () => {
    const note = host.querySelector<HTMLInputElement>(".flow-ack-note")?.value.trim() ?? "";
    try {
      await post(`/api/handover/${encodeURIComponent(last!.id)}/ack`, { note });
      const box = host.querySelector<HTMLInputElement>(".flow-ack-note");
      if (box) box.value = "";
      await renderHandover(host);
    } catch (e) {
      fail(e);
    }
  });
}

/** Prints one sheet: the page shows only it while the dialog is open. */
function printSheet(html: string): void {
  const holder = document.createElement("div");
  holder.className = "flow-print-holder";
  holder.innerHTML = html;
  document.body.appendChild(holder);
  document.body.classList.add("flow-printing");
  const end = () => {
    document.body.classList.remove("flow-printing");
    holder.remove();
    window.removeEventListener("afterprint", end);
  };
  window.addEventListener("afterprint", end);
  window.print();
  // Browsers without afterprint (or a headless one) get it back at once.
  window.setTimeout(end, 1000);
}
