// Response plans (处置预案) on the proposals tab: one card per plan — its
// name, its event, its steps in order with the devices' road-book names,
// the commanded states, rule and legal basis — approved in one click, or
// step by step (approve / edit / reject through the plan's endpoints). An
// unanswered safety step shows its escalation on its card. The steps are
// the pending proposals the model already holds; this module groups them.

import { ApiError, get, post } from "./api";
import { dirName, getLang, kindName, stake, t } from "./i18n";
import { model } from "./model";

export interface PlanStep {
  id: string;
  device: string;
  device_name: string;
  direction: string | null;
  command: any;
  applied: any;
  kind: string;
  reason: string;
  rule: string | null;
  basis: string | null;
  status: string;
  expires_ms: number;
}

export interface Plan {
  id: string;
  name: string;
  event: string | null;
  event_kind: string | null;
  direction: string | null;
  from_m: number | null;
  to_m: number | null;
  rule: string | null;
  status: string;
  created_ms: number;
  updated_ms: number;
  steps: PlanStep[];
}

const esc = (s: unknown): string => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The pending plans, kept current by the stream's `plan` messages. */
export class PlanBook {
  readonly plans = new Map<string, Plan>();
  /** Step id → escalation level, from the stream's `alarm` messages. */
  readonly escalated = new Map<string, number>();
  private listeners = new Set<() => void>();

  on(f: () => void): void {
    this.listeners.add(f);
  }

  private emit(): void {
    for (const f of this.listeners) f();
  }

  async reload(): Promise<void> {
    try {
      const list = await get<Plan[]>("/api/plans?status=pending");
      this.plans.clear();
      for (const p of list) this.plans.set(p.id, p);
    } catch {
      /* an older centre without plans: the loose proposals are shown */
    }
    this.emit();
  }

  /** A plan as the API or the stream gives it. */
  put(p: Plan): void {
    if (!p?.id) return;
    if (p.status === "pending") this.plans.set(p.id, p);
    else this.plans.delete(p.id);
    for (const s of p.steps ?? []) if (s.status !== "pending") this.escalated.delete(s.id);
    this.emit();
  }

  /** Stream `plan`: `{"change", "plan"}`. */
  apply(msg: { change: string; plan: Plan }): void {
    this.put(msg?.plan);
  }

  /** Stream `alarm` of an unanswered step. */
  alarm(a: { proposal?: string; level?: number }): void {
    if (!a?.proposal) return;
    this.escalated.set(a.proposal, a.level ?? 1);
    this.emit();
  }

  /** The plan a step belongs to. */
  planOf(stepId: string): Plan | undefined {
    for (const p of this.plans.values()) if (p.steps.some((s) => s.id === stepId)) return p;
    return undefined;
  }

  step(stepId: string): PlanStep | undefined {
    return this.planOf(stepId)?.steps.find((s) => s.id === stepId);
  }
}

export const planBook = new PlanBook();

/** A plan's name in the console's language (the server's is Chinese). */
export function planTitle(p: Plan): string {
  if (getLang() === "zh" && p.name) return p.name;
  if (p.event_kind) {
    const a = p.from_m ?? 0;
    const b = p.to_m ?? a;
    const extent = Math.abs(b - a) < 1 ? stake(a) : `${stake(a)}–${stake(b)}`;
    return `${kindName(p.event_kind)} ${extent} ${dirName(p.direction)} ${t("plan")}`;
  }
  if (p.name.startsWith("解除管控")) return `${t("planReleased")} ${t("plan")}`;
  // Named by its rule (`state.congestion 处置预案`): the rule, then the word.
  return `${p.name.replace(/\s*处置预案$/, "")} ${t("plan")}`;
}

/** The commands of a plan's pending steps as one what-if plan (the twin
 * takes a list of device states). */
export function planWhatIf(p: Plan, plannedState: (device: string, c: any) => [string, unknown] | null): { name: string; devices: Record<string, unknown> } {
  const devices: Record<string, unknown> = {};
  for (const s of p.steps) {
    if (s.status !== "pending") continue;
    const st = plannedState(s.device, s.command);
    if (st) devices[st[0]] = st[1];
  }
  return { name: planTitle(p), devices };
}

/** Decides steps of a plan (`verb`: approve, reject, edit); the answer is
 * the plan as it then stands. */
export async function decidePlan(id: string, verb: "approve" | "reject" | "edit", body: Record<string, unknown>): Promise<Plan> {
  const p = await post<Plan>(`/api/plans/${encodeURIComponent(id)}/${verb}`, body);
  planBook.put(p);
  for (const s of p.steps) {
    if (s.status !== "pending" && model.proposals.has(s.id)) model.apply("proposal", { ...model.proposals.get(s.id)!, status: s.status });
  }
  return p;
}

export { ApiError };

/** The head of a plan card; `stepsHtml` are its steps (the proposals tab
 * renders pending steps with their decision forms). */
export function planCard(p: Plan, stepsHtml: string, decide: boolean): string {
  const pending = p.steps.filter((s) => s.status === "pending");
  const ev = p.event ? model.events.get(p.event) : undefined;
  // The law of the steps waiting now (a superseded step's band may differ).
  const basis = (pending.length ? pending : p.steps).find((s) => s.basis)?.basis;
  const esc2 = [...pending].map((s) => planBook.escalated.get(s.id) ?? 0).reduce((a, b) => Math.max(a, b), 0);
  const done = p.steps.filter((s) => s.status !== "pending" && s.status !== "superseded");
  return `<li class="plan${esc2 ? " plan-escalated" : ""}" data-plan="${esc(p.id)}">
    <div class="plan-head">
      <b class="plan-name">${esc(planTitle(p))}</b>
      <span class="sub">${esc(p.id)} · ${p.event ? `${esc(p.event)}${ev ? ` · ${esc(kindName(ev.kind))}` : ""}` : "—"} · ${pending.length} ${t("planSteps")}${
        p.rule ? ` · ${t("rule")}: ${esc(p.rule)}` : ""
      }</span>
      ${basis ? `<span class="sub plan-basis">${t("basis")}: ${esc(basis)}</span>` : ""}
      ${esc2 ? `<span class="bad plan-alarm">⚠ ${t("escalated")} (${t("alarmLevel")} ${esc2})</span>` : ""}
      ${
        decide
          ? `<div class="actions"><button type="button" class="primary" data-act="plan-approve" data-id="${esc(p.id)}">${t("approveAll")} (${pending.length})</button>
             <button type="button" data-act="plan-whatif" data-id="${esc(p.id)}">${t("planWhatif")}</button></div>`
          : `<div class="actions"><button type="button" data-act="plan-whatif" data-id="${esc(p.id)}">${t("planWhatif")}</button></div>`
      }
    </div>
    <ol class="plan-steps">${stepsHtml}${done
      .map(
        (s) =>
          `<li class="plan-step done" data-step="${esc(s.id)}"><span class="sub">${esc(s.id)} · ${esc(s.device_name)} · ${esc(kindName(s.status))}${
            s.applied ? "" : ` · ${t("notApplied")}`
          }</span></li>`,
      )
      .join("")}</ol>
  </li>`;
}

/** The extra line of a pending step: device name, rule, basis, escalation. */
export function stepLine(s: PlanStep): string {
  const lvl = planBook.escalated.get(s.id);
  return `<div class="sub step-meta">${esc(s.device_name)}${s.device_name !== s.device ? ` (${esc(s.device)})` : ""}${
    s.direction ? ` · ${esc(dirName(s.direction))}` : ""
  }${s.rule ? ` · ${t("rule")}: ${esc(s.rule)}` : ""}${lvl ? ` · <span class="bad step-alarm">⚠ ${t("escalated")} (${t("alarmLevel")} ${lvl})</span>` : ""}</div>`;
}
