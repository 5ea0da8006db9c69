// The signed-in staff key: kept in sessionStorage (gone when the tab closes, never
// written to disk by us), sent as X-Api-Key on every console call. Its tenant and
// role come from GET /v1/admin/whoami; the UI hides what the role may not do, and
// the API refuses it anyway (its message is shown when it does).
import { computed, reactive } from "vue";
import { ApiError, call } from "../shared/api.js";

const STORAGE_KEY = "carnival.console.key";

export const session = reactive({
  key: null,
  tenantId: null,
  role: null,
  keyName: null,
  institutionId: null,
  // Why the last session ended (an expired or revoked key), for the sign-in page.
  endedBecause: null,
});

export const signedIn = computed(() => session.role !== null);
// Analysts read; admins and operators change configuration (api/deps.py Operator).
export const canChange = computed(() => session.role === "admin" || session.role === "operator");

function forget(reason = null) {
  sessionStorage.removeItem(STORAGE_KEY);
  Object.assign(session, {
    key: null, tenantId: null, role: null, keyName: null, institutionId: null, endedBecause: reason,
  });
}

export async function signIn(key) {
  const me = await call("GET", "/v1/admin/whoami", { headers: { "X-Api-Key": key } });
  sessionStorage.setItem(STORAGE_KEY, key);
  Object.assign(session, {
    key,
    tenantId: me.tenant_id,
    role: me.role,
    keyName: me.key_name,
    institutionId: me.institution_id,
    endedBecause: null,
  });
}

export function signOut() {
  forget();
}

// A reload keeps the session: the stored key is checked again.
export async function resume() {
  const key = sessionStorage.getItem(STORAGE_KEY);
  if (!key) return;
  try {
    await signIn(key);
  } catch (error) {
    forget(error instanceof ApiError ? error.message : String(error));
  }
}

// Staff calls: the key in the header; a key revoked mid-session ends the session.
async function staff(method, path, opts = {}) {
  try {
    return await call(method, path, { ...opts, headers: { ...(opts.headers || {}), "X-Api-Key": session.key } });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) forget(error.message);
    throw error;
  }
}

// An answer that is not JSON (an upload's, a CSV export) fails in the same shape.
async function refusal(reply) {
  const text = await reply.text();
  let error = null;
  try {
    error = JSON.parse(text).error;
  } catch {
    error = null;
  }
  const failed = error
    ? new ApiError(reply.status, error.code, error.message, error.details || {})
    : new ApiError(reply.status, "http_" + reply.status, text || reply.statusText);
  if (failed.status === 401) forget(failed.message);
  return failed;
}

async function send(method, path, { body, contentType, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { "X-Api-Key": session.key, ...(contentType ? { "Content-Type": contentType } : {}) };
  try {
    return await fetch(url, { method, headers, body });
  } catch {
    throw new ApiError(0, "network_error", "the server could not be reached: check your connection");
  }
}

// A CSV file as the request's body (the API reads text/csv, not a form).
async function upload(path, file, query) {
  const reply = await send("POST", path, { body: file, contentType: "text/csv", query });
  if (!reply.ok) throw await refusal(reply);
  return reply.json();
}

// A CSV the API streams, saved under the name it gives; the key travels in a
// header, so a plain link cannot fetch it.
async function download(path, fallbackName) {
  const reply = await send("GET", path);
  if (!reply.ok) throw await refusal(reply);
  const named = /filename="([^"]+)"/.exec(reply.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await reply.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = named ? named[1] : fallbackName;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export const api = {
  get: (path, query) => staff("GET", path, { query }),
  post: (path, body) => staff("POST", path, { body }),
  patch: (path, body) => staff("PATCH", path, { body }),
  put: (path, body) => staff("PUT", path, { body }),
  del: (path) => staff("DELETE", path),
  upload,
  download,
};
