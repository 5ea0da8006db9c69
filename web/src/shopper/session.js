// Who the shopper is and which page they are on.
//
// The merchant's app opens /p/{tenant}/{activity}#token=<shopper token>. The
// token travels in the fragment because a fragment is never sent to a server
// (no access logs, no Referer); we keep it in sessionStorage so a reload still
// works, and take it out of the address bar so a screenshot or a copied link
// does not leak it.

const TOKEN_PARAM = "token";

export function pageFromPath(pathname = window.location.pathname) {
  const match = pathname.match(/^\/p\/([^/]+)\/([^/]+)\/?$/);
  if (!match) return null;
  return { tenantId: decodeURIComponent(match[1]), activityId: decodeURIComponent(match[2]) };
}

// One token per tenant: a shopper may open several merchants' pages in one tab.
const storageKey = (tenantId) => `carnival.shopper.token.${tenantId}`;

function tokenFromFragment() {
  const fragment = window.location.hash.replace(/^#/, "");
  if (!fragment) return null;
  const params = new URLSearchParams(fragment);
  const token = params.get(TOKEN_PARAM);
  if (!token) return null;
  params.delete(TOKEN_PARAM);
  const rest = params.toString();
  const clean = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
  window.history.replaceState(window.history.state, "", clean);
  return token;
}

// The tenant a token claims (its first part is base64url JSON {"t", "u", "exp"}).
// Read without verifying: only to tell the shopper early that a link and a token
// do not belong together; the api verifies every call.
export function tokenClaims(token) {
  try {
    const part = token.split(".")[0].replaceAll("-", "+").replaceAll("_", "/");
    const body = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return { tenantId: body.t, userId: body.u, expiresAt: body.exp };
  } catch {
    return null;
  }
}

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage blocked (private mode, policies): the token lives in memory only
  }
}

// The shopper's token for this tenant: from the fragment (then stored), else
// from this tab's storage, else null.
export function shopperToken(tenantId) {
  const fresh = tokenFromFragment();
  const store = storage();
  if (fresh) {
    store?.setItem(storageKey(tenantId), fresh);
    return fresh;
  }
  return store?.getItem(storageKey(tenantId)) || null;
}

export function forgetToken(tenantId) {
  storage()?.removeItem(storageKey(tenantId));
}

// The share code a friend arrived with (/s/<code> forwards to ?ref=<code>): kept
// per activity in this tab, so it survives the merchant's app adding the token.
const REF_PATTERN = /^[A-Za-z0-9]{1,64}$/;

export function referralCode(activityId, search = window.location.search) {
  const key = `carnival.ref.${activityId}`;
  const fresh = new URLSearchParams(search).get("ref");
  const store = storage();
  if (fresh && REF_PATTERN.test(fresh)) {
    store?.setItem(key, fresh);
    return fresh;
  }
  return store?.getItem(key) || null;
}
