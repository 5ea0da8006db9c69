// The one way the pages talk to the api: JSON in and out, the api's error shape
// ({"error": {"code", "message", "details"}}) turned into an ApiError, and a 202
// ticket polled until its answer is ready, so a page never sees a ticket.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const TICKET_POLL_MS = 150;
const TICKET_GIVE_UP_MS = 30_000;

async function parse(reply) {
  const text = await reply.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!reply.ok) {
    const error = body && body.error;
    if (error) throw new ApiError(reply.status, error.code, error.message, error.details || {});
    throw new ApiError(reply.status, "http_" + reply.status, text || reply.statusText);
  }
  return { status: reply.status, body };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A request id for the road's idempotency: a retry with the same id gets the same answer.
export const requestId = () => crypto.randomUUID().replaceAll("-", "");

// headers: {"X-Api-Key": key} for staff, {"Authorization": "Bearer <token>"} for shoppers.
export async function call(method, path, { headers = {}, body, query } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, v);
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  let reply;
  try {
    reply = await fetch(url, {
      method,
      headers: { ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError(0, "network_error", "the server could not be reached: check your connection");
  }
  let { status, body: answer } = await parse(reply);
  // 202: the decision is queued; poll its ticket until the answer is there.
  const deadline = Date.now() + TICKET_GIVE_UP_MS;
  while (status === 202 && answer && answer.poll) {
    if (Date.now() > deadline) {
      throw new ApiError(504, "still_deciding", "this is taking longer than usual: try again in a moment");
    }
    await sleep(TICKET_POLL_MS);
    ({ status, body: answer } = await parse(await fetch(answer.poll, { headers })));
  }
  return answer;
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, body, opts = {}) => call("POST", path, { ...opts, body });
export const patch = (path, body, opts = {}) => call("PATCH", path, { ...opts, body });
export const del = (path, opts) => call("DELETE", path, opts);
