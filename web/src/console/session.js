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

export const api = {
  get: (path, query) => staff("GET", path, { query }),
  post: (path, body) => staff("POST", path, { body }),
  patch: (path, body) => staff("PATCH", path, { body }),
  put: (path, body) => staff("PUT", path, { body }),
};
