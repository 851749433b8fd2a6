// The console's only way to the centre: the documented HTTP API
// (docs/SERVER.md) and its SSE stream. No other network access.

export type Role = "viewer" | "operator" | "admin";

export interface Session {
  token: string;
  role: Role;
  user: string;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    /** The server's code for the error (`bad_login`), when it sent one. */
    public code?: string,
  ) {
    super(message);
  }
}

let session: Session | null = null;
let onUnauthorized: () => void = () => {};

export function loadSession(): Session | null {
  try {
    const s = sessionStorage.getItem("zhilu.session");
    session = s ? (JSON.parse(s) as Session) : null;
  } catch {
    session = null;
  }
  return session;
}

export function currentSession(): Session | null {
  return session;
}

export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

export async function login(user: string, password: string): Promise<Session> {
  const r = await fetch("/api/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: user, password }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, body.error ?? r.statusText, body.code);
  session = { token: body.token, role: body.role, user };
  sessionStorage.setItem("zhilu.session", JSON.stringify(session));
  return session;
}

export async function logout(): Promise<void> {
  const s = session;
  session = null;
  sessionStorage.removeItem("zhilu.session");
  if (s) {
    await fetch("/api/logout", {
      method: "POST",
      headers: { authorization: `Bearer ${s.token}` },
    }).catch(() => undefined);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (session) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    onUnauthorized();
    throw new ApiError(401, "unauthorized");
  }
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || r.statusText, data?.code);
  return data as T;
}

export const get = <T>(path: string): Promise<T> => call<T>("GET", path);
export const post = <T>(path: string, body: unknown): Promise<T> => call<T>("POST", path, body);

export type StreamHandler = (kind: string, data: any) => void;

const STREAM_KINDS = ["hello", "state", "event", "proposal", "action", "device", "vehicles", "alarm", "plan", "lagged"];

/** The live stream. An EventSource cannot send the session token as a
 * header, and a token in a URL may be kept by proxies and logs: each
 * connection opens with a one-use ticket (`POST /api/stream/ticket`, valid
 * about 30 s) instead, so the stream reconnects itself with a fresh ticket
 * and tells the caller when it (re)opens so that it can reload what it
 * missed. */
export class LiveStream {
  private es: EventSource | null = null;
  private closed = false;
  private retry: number | undefined;

  constructor(
    private onMessage: StreamHandler,
    private onStatus: (open: boolean) => void,
  ) {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed || !session) return;
    let ticket: string;
    try {
      ticket = (await post<{ ticket: string }>("/api/stream/ticket", {})).ticket;
    } catch {
      this.onStatus(false);
      this.later();
      return;
    }
    if (this.closed) return;
    const es = new EventSource(`/api/stream?ticket=${encodeURIComponent(ticket)}`);
    this.es = es;
    for (const k of STREAM_KINDS) {
      es.addEventListener(k, (e) => {
        let data: unknown = null;
        try {
          data = JSON.parse((e as MessageEvent).data);
        } catch {
          return;
        }
        this.onMessage(k, data);
      });
    }
    es.onopen = () => this.onStatus(true);
    // A ticket opens once: reconnect with a new one (not EventSource's own
    // retry, which would send the used ticket again).
    es.onerror = () => {
      es.close();
      if (this.es !== es) return;
      this.es = null;
      this.onStatus(false);
      this.later();
    };
  }

  private later(): void {
    window.clearTimeout(this.retry);
    if (!this.closed) this.retry = window.setTimeout(() => void this.connect(), 2000);
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.retry);
    this.es?.close();
    this.es = null;
  }
}

export function openStream(
  onMessage: StreamHandler,
  onStatus: (open: boolean) => void,
): LiveStream | null {
  if (!session) return null;
  return new LiveStream(onMessage, onStatus);
}
